"""Calling the expert's own phone into the consultation room.

The FreeSWITCH channel calls `ExpertDialer(channel, room, role, profile)` before a caller
joins a room.  When the room has no moderator yet (`conference <room> list` on the inbound
Event Socket), the expert's phone is dialled with `bgapi originate` straight into the room as
moderator (`&conference(room@profile+flags{moderator|endconf})`: when the expert hangs up the
room ends, and the caller's conference application returns because ivrflow sets
`hangup_after_conference=false`, capture l2).  The caller hears `hold` (a ringback tone)
meanwhile; if the expert does not answer, the room is refused (ConferenceFailed: the flow's
`failed` branch).  Two callers for the same room share one dialling.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from typing import Any

from engine.channel.esl import ESLError
from engine.runtime.channel import ConferenceFailed

from .config import ExpertsConfig

__all__ = ["ExpertDialer"]

log = logging.getLogger("ivrflow.serve")


class ExpertDialer:
    def __init__(self, config: ExpertsConfig, inbound: Any) -> None:
        self.config = config
        self.inbound = inbound              # engine.channel.esl.InboundClient
        self._dialling: dict[str, asyncio.Task] = {}
        self.originated: list[tuple[str, str]] = []   # (room, dial string) for the record/tests

    def target(self, room: str) -> tuple[str, str] | None:
        """(expert number, dial string) for a room, or None if it is not an expert's room."""
        m = self.config.room_pattern.match(room)
        if not m:
            return None
        number = m.group("number")
        phone = self.config.phones.get(number)
        if phone is None and "{phone}" in self.config.dial:
            return None
        dial = self.config.dial.format(number=number, phone=phone or number, room=room)
        return number, dial

    async def __call__(self, channel: Any, room: str, role: str, profile: str) -> None:
        if not self.config.originate or role == "moderator":
            return
        target = self.target(room)
        if target is None:
            log.info("room %s: no expert phone configured; the caller waits in the room", room)
            return
        try:
            members = await self.inbound.conference_list(room, timeout=5.0)
        except ESLError as e:
            log.warning("room %s: cannot list the room (%s); not calling the expert", room, e)
            return
        if any(m.moderator for m in members):
            return
        task = self._dialling.get(room)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._dial(room, profile, *target))
            self._dialling[room] = task
            task.add_done_callback(lambda _t, r=room: self._dialling.pop(r, None))
        hold = None
        if self.config.hold:
            hold = channel.start_hold(self.config.hold)
        try:
            await asyncio.shield(task)
        except ConferenceFailed:
            raise
        except ESLError as e:
            raise ConferenceFailed(f"could not call the expert of room {room}: {e}") from None
        finally:
            if hold is not None:
                await channel.stop_hold(hold)

    async def _dial(self, room: str, profile: str, number: str, dial: str) -> str:
        cfg = self.config
        leg = str(uuidlib.uuid4())
        app = f"&conference({room}@{profile}+flags{{moderator|endconf}})"
        log.info("room %s: calling expert %s at %s", room, number, dial,
                 extra={"room": room, "expert": number})
        self.originated.append((room, dial))
        try:
            return await self.inbound.originate(
                dial, app, uuid=leg, timeout=cfg.timeout + 10,
                variables={"origination_caller_id_number": cfg.caller_id_number,
                           "originate_timeout": str(cfg.timeout), "ivrflow_room": room,
                           "ivrflow_expert": number})
        except ESLError as e:
            log.warning("room %s: expert %s did not join: %s", room, number, e,
                        extra={"room": room, "expert": number})
            raise ConferenceFailed(f"the expert did not answer ({e})") from None
