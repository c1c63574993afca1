"""Reading information texts from YAML::

    hospital_intro:
      zh: 仁和医院是……
      en: Renhe Hospital is ...
    new_drugs:
      zh: ...

Top level: topic -> {language: text}.  Errors name the file and the offending topic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .errors import InvalidInput
from .services import validate_info

MAX_FILE = 2_000_000


def read_info_file(path: str | Path) -> dict[str, dict[str, str]]:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE:
            raise InvalidInput(f"{p}: file larger than {MAX_FILE} bytes")
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"{p}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{p}: not UTF-8 text") from None
    try:
        data: Any = YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        raise InvalidInput(f"{p}: invalid YAML: {str(e).splitlines()[0] if str(e) else e}"
                           ) from None
    try:
        validate_info(data)
    except InvalidInput as e:
        raise InvalidInput(f"{p}: {e}") from None
    return {str(t): {str(lg): str(b) for lg, b in per.items()} for t, per in data.items()}
