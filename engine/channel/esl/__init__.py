"""FreeSWITCH Event Socket (ESL) protocol layer: socket-free parser, asyncio transport,
outbound server and inbound client. See docs/esl.md."""

from .connection import (ESLConnection, EventSubscription, Execution, ExecutionFlushed,
                         HangupInfo, make_match)
from .errors import (AuthError, ChannelHangup, CommandError, ConnectionLost, ESLError,
                     ESLTimeout, ProtocolError)
from .inbound import ConferenceMember, InboundClient, parse_conference_list
from .outbound import ChannelData, Handshake, OutboundConnection, OutboundServer, serve_outbound
from .parser import Event, Headers, Message, Parser, encode_command, url_decode, url_encode

__all__ = [
    "AuthError", "ChannelData", "ChannelHangup", "CommandError", "ConferenceMember",
    "ConnectionLost", "ESLConnection", "ESLError", "ESLTimeout", "Event", "EventSubscription",
    "Execution", "ExecutionFlushed", "Handshake", "HangupInfo", "Headers", "InboundClient",
    "Message", "OutboundConnection", "OutboundServer", "Parser", "ProtocolError",
    "encode_command", "make_match", "parse_conference_list", "serve_outbound", "url_decode",
    "url_encode",
]
