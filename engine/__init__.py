"""ivrflow: declarative YAML IVR flows for call centres, run on FreeSWITCH."""

from pathlib import Path

__version__ = "0.1.0"

#: Root of the source tree (holds schema/, flows/, prompts/, freeswitch/).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
