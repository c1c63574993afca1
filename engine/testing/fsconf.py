"""mod_conference model for the emulator: members, floor, mute, kick, endconf, list.

Event layout and behaviour from captures 5-8 and l/l2: add-member, floor-change, del-member
(Conference-Size after removal, with Event-Date-Timestamp for billing), kick returns the
member's conference application (the channel stays up), endconf ends the others about 25 ms
later and hangs them up unless `hangup_after_conference=false`. Member-IDs are global.
The floor holder's leave first releases the floor (Old-ID/New-ID none, size before the
leave); the next speaker gets it ~20 ms later. The member's channel carries conference_name,
conference_member_id, conference_uuid, ... from the join on. The conference's own sounds
(alone / hold music failing, enter / exit tones done) reach only the inbound side (l_inbound).
Not modelled (no capture): the exit tone / alone sound of a leave that does not end the
conference.
"""

from __future__ import annotations

import asyncio
import re
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .fswire import Header

if TYPE_CHECKING:  # pragma: no cover
    from .fsapps import AppContext
    from .fschannel import EmuChannel
    from .fsemu import FreeSwitchEmulator

SUBCLASS = "conference::maintenance"
ENDCONF_DELAY = 0.025
# the conference's own sounds (l_inbound / l2_inbound, default profile, sounds not installed):
# the alone sound and the hold music fail (play-file with Error), the enter / exit tones report
# play-file-done; these events carry no Unique-ID, so only the inbound connection sees them
SOUNDS = "/srv/freeswitch/share/freeswitch/sounds/en/us/callie"
ALONE_SOUND = f"{SOUNDS}/conference/conf-alone.wav"
MOH_SOUND = "local_stream://moh"
ENTER_SOUND = "tone_stream://%(200,0,500,600,700)"
EXIT_SOUND = "tone_stream://%(500,0,300,200,100,50,25)"
ENTER_SOUND_DONE = 0.6        # then the next frame: +611..616 ms after add-member (l, l2)
FLOOR_HANDOVER = 0.02         # floor to the next speaker / exit tone cut: +19..20 ms (l, l2)
_SOUND_CALLING = {"play-file": ("conference_file.c", "conference_file_play", "268"),
                  "play-file-done": ("conference_file.c", "conference_file_close", "52")}
_ARG = re.compile(r"^(?P<name>[^@+]+)(?:@(?P<profile>[^+]+))?(?:\+flags\{(?P<flags>[^}]*)\})?")


@dataclass
class Member:
    id: int
    chan: "EmuChannel"
    flags: set[str]
    speak: bool = True
    hear: bool = True
    leaving: bool = False         # kicked / conference ended: never gets the floor again
    ctx: "AppContext | None" = None

    @property
    def moderator(self) -> bool:
        return "moderator" in self.flags


@dataclass
class Conference:
    name: str
    profile: str
    uuid: str
    members: list[Member] = field(default_factory=list)
    floor: Member | None = None
    ended: bool = False


class Conferences:
    def __init__(self, emu: "FreeSwitchEmulator") -> None:
        self.emu = emu
        self.by_name: dict[str, Conference] = {}
        self.next_member_id = 1

    # ------------------------------------------------------------ event helpers

    def _conf_block(self, conf: Conference, *, floor: bool | None = None) -> list[Header]:
        h = [("Conference-Name", conf.name), ("Conference-Domain", "127.0.0.1"),
             ("Conference-Size", str(len(conf.members))), ("Conference-Ghosts", "0"),
             ("Conference-Profile-Name", conf.profile), ("Conference-Unique-ID", conf.uuid)]
        if floor is not None:
            h.append(("Floor", "true" if floor else "false"))
        return h

    def _member_block(self, m: Member) -> list[Header]:
        return [("Video", "false"), ("Hear", "true" if m.hear else "false"), ("See", "true"),
                ("Speak", "true" if m.speak else "false"), ("Talking", "false"),
                ("Mute-Detect", "false"), ("Hold", "false"), ("Member-ID", str(m.id)),
                ("Member-Type", "moderator" if m.moderator else "member"),
                ("Member-Ghost", "false"), ("Energy-Level", "100"), ("Current-Energy", "0")]

    def _member_event(self, conf: Conference, m: Member, action: str) -> None:
        m.chan.fire_custom(SUBCLASS, action, self._conf_block(conf, floor=conf.floor is m),
                           self._member_block(m) + [("Action", action)])

    def _conf_event(self, conf: Conference, action: str, extra: list[Header] = ()) -> None:
        core = self.emu.host.core("CUSTOM", self.emu.epoch_us(), calling=action)
        headers = [("Event-Subclass", SUBCLASS)] + core + self._conf_block(conf) + \
            [("Action", action)] + list(extra)
        self.emu.fire(headers, None)

    def _sound_event(self, conf: Conference, action: str, pre: list[Header],
                     post: list[Header]) -> None:
        """play-file / play-file-done: the conference block, `pre`, Action, `post`."""
        core = [(n, v) for n, v in self.emu.host.core("CUSTOM", self.emu.epoch_us())]
        fil, func, line = _SOUND_CALLING[action]
        calling = {"Event-Calling-File": fil, "Event-Calling-Function": func,
                   "Event-Calling-Line-Number": line}
        core = [(n, calling.get(n, v)) for n, v in core]
        headers = [("Event-Subclass", SUBCLASS)] + core + self._conf_block(conf) + list(pre) + \
            [("Action", action)] + list(post)
        self.emu.fire(headers, None)

    def _play_failed(self, conf: Conference, path: str, async_: bool) -> None:
        self._sound_event(conf, "play-file", [], [
            ("File", path), ("Async", "true" if async_ else "false"),
            ("Error", "File could not be played")])

    def _play_done(self, conf: Conference, path: str, ms: int) -> None:
        self._sound_event(conf, "play-file-done", [
            ("seconds", str(ms // 1000)), ("milliseconds", str(ms)), ("samples", str(ms * 8))],
            [("File", path)])

    def _alive(self, conf: Conference) -> bool:
        return bool(conf.members) and self.by_name.get(conf.name) is conf

    async def _enter_sound(self, conf: Conference, chan: "EmuChannel") -> None:
        """The enter tone for a member joining others: play-file-done, 400 ms played, about
        0.6 s after the add-member (l_inbound: +615 / +611 ms)."""
        await asyncio.sleep(ENTER_SOUND_DONE)
        await chan.tick()
        if self._alive(conf) and not conf.ended:
            self._play_done(conf, ENTER_SOUND, 400)

    def _floor_change(self, conf: Conference, old: Member | None, new: Member | None) -> None:
        conf.floor = new
        old_id = str(old.id) if old else "none"
        if new is None:
            # the release (l_inbound: before the holder's del-member, with the size before
            # the leave) names no member: Old-ID none, New-ID none
            self._conf_event(conf, "floor-change", [("Old-ID", "none"), ("New-ID", "none")])
            return
        pre = self._conf_block(conf) + [("Action", "floor-change"), ("Old-ID", old_id)] + \
            self._conf_block(conf, floor=True)
        new.chan.fire_custom(SUBCLASS, "floor-change", pre,
                             self._member_block(new) + [("New-ID", str(new.id))])

    # ------------------------------------------------------------ the application

    async def run_member(self, ctx: "AppContext", arg: str) -> str:
        m = _ARG.match(arg)
        if not m:
            return "_none_"
        name, profile = m.group("name"), m.group("profile") or "default"
        flags = set(filter(None, (m.group("flags") or "").split("|")))
        chan = ctx.chan
        conf = self.by_name.get(name)
        if conf is None or conf.ended:
            conf = Conference(name, profile, str(uuidlib.uuid4()))
            self.by_name[name] = conf
            self._conf_event(conf, "conference-create")
        member = Member(self.next_member_id, chan, flags, speak="mute" not in flags,
                        hear="deaf" not in flags, ctx=ctx)
        self.next_member_id += 1
        conf.members.append(member)
        # 5-8.log, l, l2: set on joining, still there in the completion and after
        ctx.set_var("conference_name", conf.name)
        ctx.set_var("app_session_uuid", conf.uuid)
        for name in ("read_codec", "read_rate"):
            ctx.set_var(name, chan.var(name))
        ctx.set_var("conference_member_id", str(member.id))
        ctx.set_var("conference_moderator", "true" if member.moderator else "false")
        ctx.set_var("conference_ghost", "false")
        ctx.set_var("conference_uuid", conf.uuid)
        ctx.set_var("conference_call_key",
                    f"conference_{conf.name}_127.0.0.1_{chan.caller_number}")
        alone = len(conf.members) == 1
        if alone:
            self._play_failed(conf, ALONE_SOUND, False)     # l: before the add-member
        self._member_event(conf, member, "add-member")
        if not alone:
            self.emu.spawn(self._enter_sound(conf, chan))
        if conf.floor is None and member.speak:
            await chan.tick()
            if conf.floor is None and not chan.hungup and member in conf.members:
                self._floor_change(conf, None, member)
        if alone and len(conf.members) == 1 and member in conf.members and not chan.hungup:
            self._play_failed(conf, MOH_SOUND, True)        # l: with the first floor-change
        while True:
            outcome = await ctx.media(None)
            if outcome != "break":
                break
        if ctx.app.ended == "kick":
            await chan.tick()
        self._leave(conf, member)
        # l2: the completion has read_codec / read_rate set again, conference_call_key gone
        ctx.set_var("conference_call_key", None)
        for name in ("read_codec", "read_rate"):
            ctx.set_var(name, chan.var(name))
        return "_none_"

    def _leave(self, conf: Conference, member: Member) -> None:
        had_floor = conf.floor is member
        if had_floor:
            self._floor_change(conf, member, None)
        conf.members.remove(member)
        self._member_event(conf, member, "del-member")
        ending = {"moderator", "endconf"} <= member.flags and bool(conf.members) \
            and not conf.ended
        if had_floor or ending:
            # l / l2: ~20 ms later the floor goes to the next speaker and, when the moderator
            # ended the conference, the exit tone stops (play-file-done, 40 ms)
            self.emu.loop.call_later(FLOOR_HANDOVER, self._after_leave, conf, had_floor,
                                     ending)
        if ending:
            conf.ended = True
            self.emu.loop.call_later(ENDCONF_DELAY, self._end_all, conf)
        if not conf.members:
            conf.ended = True
            if self.by_name.get(conf.name) is conf:
                del self.by_name[conf.name]
            self._conf_event(conf, "conference-destroy")

    def _after_leave(self, conf: Conference, had_floor: bool, ending: bool) -> None:
        if had_floor and conf.floor is None:
            nxt = next((x for x in conf.members if x.speak and not x.leaving
                        and not x.chan.hungup), None)
            if nxt is not None:
                self._floor_change(conf, None, nxt)
        if ending and self._alive(conf):
            self._play_done(conf, EXIT_SOUND, 40)

    def _end_all(self, conf: Conference) -> None:
        for member in conf.members:
            member.leaving = True
        for member in list(conf.members):
            chan = member.chan
            if chan.hungup or member.ctx is None:
                continue
            value = chan.var("hangup_after_conference")
            if value is not None and value.strip().lower() in ("false", "no", "off", "0"):
                member.ctx.app.ended = "endconf"
                chan.signal()
            else:
                chan.hangup("NORMAL_CLEARING")

    # ------------------------------------------------------------ api

    def api(self, args: list[str]) -> str:
        if not args or args[0] == "list":
            return self._list_all()
        name, sub, rest = args[0], (args[1] if len(args) > 1 else "list"), args[2:]
        conf = self.by_name.get(name)
        if conf is None:
            return f"-ERR Conference {name} not found\n"
        if sub == "list":
            if rest and rest[0] == "count":
                return str(len(conf.members))
            return "".join(self._line(conf, x) for x in reversed(conf.members))
        if sub in ("mute", "unmute", "kick", "hup", "deaf", "undeaf"):
            targets = self._targets(conf, rest[0] if rest else "")
            if targets is None:
                return f"-ERR Non-Existant ID {rest[0] if rest else ''}\n"
            out = []
            for x in targets:
                out.append(self._member_api(conf, sub, x))
            return "".join(out)
        return f"-ERR Unknown conference command {sub}\n"

    def _targets(self, conf: Conference, which: str) -> list[Member] | None:
        if which == "all":
            return list(reversed(conf.members))
        found = [x for x in conf.members if str(x.id) == which]
        return found or None

    def _member_api(self, conf: Conference, sub: str, x: Member) -> str:
        if sub in ("mute", "unmute"):
            x.speak = sub == "unmute"
            self._member_event(conf, x, f"{sub}-member")
            return f"+OK {sub} {x.id}\n"
        if sub in ("deaf", "undeaf"):
            x.hear = sub == "undeaf"
            self._member_event(conf, x, f"{sub}-member")
            return f"+OK {sub} {x.id}\n"
        if sub == "kick":
            self._member_event(conf, x, "kick-member")
            x.leaving = True
            if x.ctx is not None:
                x.ctx.app.ended = "kick"
            x.chan.signal()
            return f"+OK kicked {x.id}\n"
        x.chan.hangup("NORMAL_CLEARING")
        return f"+OK hup {x.id}\n"

    def _line(self, conf: Conference, x: Member) -> str:
        flags = []
        if x.hear:
            flags.append("hear")
        if x.speak:
            flags.append("speak")
        if conf.floor is x:
            flags.append("floor")
        if x.moderator:
            flags.append("moderator")
        return (f"{x.id};{x.chan.name};{x.chan.uuid};{x.chan.caller_name};"
                f"{x.chan.caller_number};{'|'.join(flags)};0;0;100\n")

    def _list_all(self) -> str:
        if not self.by_name:
            return "+OK No active conferences.\n"
        out = []
        for conf in self.by_name.values():
            out.append(f"+OK Conference {conf.name} ({len(conf.members)} member"
                       f"{'s' if len(conf.members) != 1 else ''} rate: 8000 flags: running|"
                       "answered|enforce_min|dynamic|exit_sound|enter_sound)\n")
            out += [self._line(conf, x) for x in reversed(conf.members)]
        return "".join(out)
