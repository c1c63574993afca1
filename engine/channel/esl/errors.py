"""Exceptions of the ESL layer. Every wait in the layer ends in a result or one of these."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .parser import Event, Message

__all__ = [
    "ESLError", "ProtocolError", "ConnectionLost", "ChannelHangup", "CommandError",
    "AuthError", "ESLTimeout",
]


class ESLError(Exception):
    """Base class of all ESL errors."""


class ProtocolError(ESLError):
    """The byte stream is not valid ESL framing (bad Content-Length, garbage, oversize)."""


class ConnectionLost(ESLError):
    """The socket closed or failed (or we closed it) while something was waiting."""


class ChannelHangup(ESLError):
    """The controlled channel hung up (CHANNEL_HANGUP or disconnect notice) during a wait.

    `cause` is the Hangup-Cause when known; `event` the CHANNEL_HANGUP event (None when only the
    disconnect notice was seen); `completion` the CHANNEL_EXECUTE_COMPLETE of the waited
    application if it arrived within the caller's hangup grace period (e.g. a recording cut by
    the caller's hangup still reports `record_ms`).
    """

    def __init__(self, message: str, *, cause: str | None = None, event: "Event | None" = None,
                 completion: "Event | None" = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.event = event
        self.completion = completion


class CommandError(ESLError):
    """FreeSWITCH answered a command with `-ERR ...` (reply or api body)."""

    def __init__(self, message: str, reply: "Message | None" = None) -> None:
        super().__init__(message)
        self.reply = reply


class AuthError(ESLError):
    """The inbound `auth` was refused."""


class ESLTimeout(ESLError, TimeoutError):
    """A reply, completion or event did not arrive in time."""
