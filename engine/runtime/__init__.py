"""The runtime: the interpreter, the Channel interface, the simulated channel and clocks."""

from .channel import (CallHangup, Channel, ChannelError, ConferenceFailed, ConferenceResult, DigitsResult, KeyBuffer,
                      PlayItem, RecordResult, TransferFailed, TransferTarget)
from .clock import Clock, LoopClock, RealClock, VirtualClock
from .interpreter import CallResult, Interpreter
from .record import DISPOSITIONS, CallRecord
from .resolver import CatalogResolver, IdResolver, Resolver, ResolveError, make_resolver
from .script import ScriptError, parse_script
from .sim import SimChannel, SimOptions

__all__ = [
    "CallHangup", "Channel", "ChannelError", "ConferenceFailed", "ConferenceResult", "DigitsResult", "KeyBuffer",
    "PlayItem", "RecordResult", "TransferFailed", "TransferTarget", "Clock", "LoopClock", "RealClock",
    "VirtualClock", "CallResult", "Interpreter", "DISPOSITIONS", "CallRecord", "CatalogResolver", "IdResolver",
    "Resolver", "ResolveError", "make_resolver", "ScriptError", "parse_script", "SimChannel", "SimOptions",
]
