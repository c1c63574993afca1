"""ESL test fixtures. Helpers live in esl_captures.py and esl_helpers.py (this directory is put
on sys.path, as the suite runs with --import-mode=importlib)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
