"""FreeSWITCH-side wire formatting for the emulator, modelled on the 1.10.12 captures.

Header names, their order and the URL-encoding of values follow tests/fixtures/esl (e.g. the
connect reply of 1.log: 105 headers, core block, Channel-* profile, channel block, Caller-*
profile, variable_*, then Content-Type/Reply-Text/Socket-Mode/Control).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

from engine.channel.esl.parser import url_encode

Header = tuple[str, str]

GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

# Event-Calling-File / -Function / -Line-Number per event, as captured.
CALLING: dict[str, tuple[str, str, str]] = {
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1572"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1689"),
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", "2021"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2944"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2967"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3445"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c",
                                "switch_core_session_reporting_state", "943"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered",
                               "3560"),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", "2408"),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1879"),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", "1213"),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", "677"),
    "RECORD_START": ("switch_ivr_play_say.c", "switch_ivr_record_file_event", "767"),
    "RECORD_STOP": ("switch_ivr_play_say.c", "switch_ivr_record_file_event", "1030"),
    "conference-create": ("mod_conference.c", "conference_new", "3848"),
    "conference-destroy": ("mod_conference.c", "conference_thread_run", "863"),
    "add-member": ("conference_member.c", "conference_member_add", "962"),
    "del-member": ("conference_member.c", "conference_member_del", "1355"),
    "floor-change": ("conference_member.c", "conference_member_set_floor_holder", "1158"),
    "kick-member": ("conference_api.c", "conference_api_sub_kick", "902"),
    "mute-member": ("conference_api.c", "conference_api_sub_mute", "339"),
    "unmute-member": ("conference_api.c", "conference_api_sub_unmute", "492"),
}


class Host:
    """The emulated switch's identity (values as in the captures)."""

    def __init__(self, core_uuid: str, hostname: str = "vm", ipv4: str = "192.0.2.2",
                 ipv6: str = "fd00::2") -> None:
        self.core_uuid = core_uuid
        self.hostname = hostname
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.sequence = 500

    def core(self, name: str, epoch_us: int, calling: str | None = None) -> list[Header]:
        """The 13 headers every event starts with."""
        self.sequence += 1
        secs = epoch_us // 1_000_000
        fil, func, line = CALLING.get(calling or name, ("switch_event.c", "switch_event_fire",
                                                          "100"))
        return [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", self.ipv4),
            ("FreeSWITCH-IPv6", self.ipv6),
            ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs))),
            ("Event-Date-GMT", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(secs))),
            ("Event-Date-Timestamp", str(epoch_us)),
            ("Event-Calling-File", fil),
            ("Event-Calling-Function", func),
            ("Event-Calling-Line-Number", line),
            ("Event-Sequence", str(self.sequence)),
        ]


def header_block(headers: Iterable[Header], *, encode: bool = True) -> str:
    return "".join(f"{n}: {url_encode(v) if encode else v}\n" for n, v in headers)


def event_plain(headers: Sequence[Header], body: str | None = None) -> bytes:
    """`text/event-plain` frame: outer Content-Length/Content-Type, serialized event inside."""
    return event_plain_text(header_block(headers), body)


def event_plain_text(text: str, body: str | None = None) -> bytes:
    """`event_plain` from an already serialized header block."""
    if body is not None:
        text += f"Content-Length: {len(body.encode('utf-8'))}\n\n{body}"
    else:
        text += "\n"
    data = text.encode("utf-8")
    return f"Content-Length: {len(data)}\nContent-Type: text/event-plain\n\n".encode() + data


def event_json(headers: Sequence[Header], body: str | None = None) -> bytes:
    obj: dict[str, str] = {}
    for n, v in headers:
        obj.setdefault(n, v)
    if body is not None:
        obj["Content-Length"] = str(len(body.encode("utf-8")))
        obj["_body"] = body
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return f"Content-Length: {len(data)}\nContent-Type: text/event-json\n\n".encode() + data


def command_reply(text: str, extra: Iterable[Header] = ()) -> bytes:
    return (f"Content-Type: command/reply\nReply-Text: {text}\n"
            + header_block(extra, encode=False) + "\n").encode("utf-8")


def api_response(body: str) -> bytes:
    data = body.encode("utf-8")
    return f"Content-Type: api/response\nContent-Length: {len(data)}\n\n".encode() + data


def auth_request() -> bytes:
    return b"Content-Type: auth/request\n\n"


def disconnect_linger(uuid: str, channel_name: str, linger: int) -> bytes:
    """The notice sent at hangup when the socket lingers (`Linger-Time: -1` for bare linger)."""
    return ("Content-Type: text/disconnect-notice\n"
            f"Controlled-Session-UUID: {uuid}\n"
            "Content-Disposition: linger\n"
            f"Channel-Name: {channel_name}\n"
            f"Linger-Time: {linger}\n"
            "Content-Length: 0\n\n").encode("utf-8")


def disconnect_goodbye(uuid: str | None = None) -> bytes:
    """Final notice before FreeSWITCH closes the socket (after `exit` or the linger time)."""
    data = GOODBYE.encode()
    head = "Content-Type: text/disconnect-notice\n"
    if uuid:
        head += f"Controlled-Session-UUID: {uuid}\nContent-Disposition: disconnect\n"
    return (head + f"Content-Length: {len(data)}\n\n").encode() + data
