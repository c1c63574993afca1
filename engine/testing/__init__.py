"""Test support shipped with the engine: a wire-faithful FreeSWITCH ESL emulator
(`fsemu.FreeSwitchEmulator`), scripted callers (`caller.CallerScript`) and an asyncio loop
on a virtual clock (`vclock.VirtualTimeLoop`, `vclock.run_virtual`)."""

from .caller import CallerScript
from .fsemu import Agent, EmuCall, FreeSwitchEmulator
from .vclock import VirtualClockStall, VirtualTimeLoop, run_virtual

__all__ = ["Agent", "CallerScript", "EmuCall", "FreeSwitchEmulator", "VirtualClockStall",
           "VirtualTimeLoop", "run_virtual"]
