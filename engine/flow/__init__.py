"""The flow language: load (YAML + positions) -> schema check -> compile to an immutable IR."""

from .compiler import compile_file, compile_text, parse_duration
from .diagnostics import Diagnostic, Position
from .ir import Flow, State

__all__ = ["compile_file", "compile_text", "parse_duration", "Diagnostic", "Position", "Flow", "State"]
