"""Prompt catalogs: ``<root>/<catalog>/<language>.yaml``, one file per language.

Loaded with ruamel.yaml keeping line/column positions.  Every problem becomes a
``Diagnostic`` with a ``P0xx`` code; errors raise :class:`CatalogError`, warnings are kept
on ``Catalog.diagnostics``.  File format and codes: docs/prompts.md.
"""

from __future__ import annotations

import re
import wave
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.flow.diagnostics import Diagnostic, Position, did_you_mean
from engine.prompts import lang as langs
from engine.templating import TemplateError, parse_template

PROMPT_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
CATALOG_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
TOP_KEYS = ("language", "voice", "rate", "recordings", "prompts")
PROMPT_KEYS = ("text", "recording")
SPEECH_FILTERS = ("money", "number", "digits", "date", "time")
MAX_FILE_BYTES = 2 * 1024 * 1024


class CatalogError(Exception):
    """A catalog that cannot be used; ``.diagnostics`` says where and why."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity == "error"]
        first = errors[0].headline() if errors else "catalog error"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


@dataclass(frozen=True)
class PromptDef:
    id: str
    lang: str
    text: str                      # template source as written
    variables: frozenset[str]      # variables the template reads (engine.templating)
    is_template: bool
    recording: Path | None         # recorded audio that wins over synthesis
    position: Position             # of the prompt id in its language file


@dataclass(frozen=True)
class LanguageDef:
    lang: str
    file: Path
    voice: str | None
    rate: int
    recordings: Path | None
    prompts: Mapping[str, PromptDef]


@dataclass(frozen=True)
class Catalog:
    name: str
    root: Path                     # the catalogs root passed to load_catalog
    path: Path                     # root / name
    _langs: Mapping[str, LanguageDef]
    diagnostics: tuple[Diagnostic, ...] = field(default=())   # warnings

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._langs)

    def has_language(self, lang: str) -> bool:
        return self._key(lang) is not None

    def _key(self, lang: str) -> str | None:
        try:
            k = langs.canonical_tag(lang)
        except langs.LanguageError:
            return None
        return k if k in self._langs else None

    def language(self, lang: str) -> LanguageDef:
        k = self._key(lang)
        if k is None:
            raise KeyError(f"catalog '{self.name}' has no language '{lang}' "
                           f"(it has: {', '.join(self.languages) or 'none'})")
        return self._langs[k]

    def ids(self, lang: str) -> frozenset[str]:
        """Prompt ids defined for ``lang`` (empty when the language is absent)."""
        k = self._key(lang)
        return frozenset(self._langs[k].prompts) if k else frozenset()

    def all_ids(self) -> frozenset[str]:
        return frozenset(i for ld in self._langs.values() for i in ld.prompts)

    def get(self, lang: str, prompt_id: str) -> PromptDef | None:
        k = self._key(lang)
        return self._langs[k].prompts.get(prompt_id) if k else None

    def voice(self, lang: str) -> str | None:
        """The catalog's ``voice:`` for ``lang`` or the language's default voice."""
        return self.language(lang).voice

    def rate(self, lang: str) -> int:
        return self.language(lang).rate

    def file(self, lang: str) -> Path:
        return self.language(lang).file


# --------------------------------------------------------------------------- loading

def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


class _Loader:
    def __init__(self, file: Path, display: str, lang: str):
        self.file, self.display, self.lang = file, display, lang
        self.diags: list[Diagnostic] = []
        self.lines: list[str] = []

    def pos(self, line0: int = 0, col0: int = 0) -> Position:
        return Position(self.display, line0 + 1, col0 + 1)

    def err(self, code: str, msg: str, pos: Position, hint: str | None = None, severity: str = "error") -> None:
        self.diags.append(Diagnostic(code, msg, pos, severity, hint))

    def key_pos(self, m: Any, key: Any) -> Position:
        try:
            return self.pos(*m.lc.key(key))
        except Exception:  # noqa: BLE001 - positions are best effort on odd nodes
            return self.pos()

    def value_pos(self, m: Any, key: Any) -> Position:
        try:
            return self.pos(*m.lc.value(key))
        except Exception:  # noqa: BLE001
            return self.pos()

    def load(self, catalog_dir: Path) -> LanguageDef | None:
        try:
            raw = self.file.read_bytes()
        except OSError as e:
            self.err("P011", f"cannot read catalog file: {e.strerror or e}", self.pos())
            return None
        if len(raw) > MAX_FILE_BYTES:
            self.err("P011", f"catalog file is {len(raw)} bytes; the limit is {MAX_FILE_BYTES}", self.pos())
            return None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n")
            self.err("P011", "catalog file is not valid UTF-8", self.pos(line))
            return None
        self.lines = text.splitlines()
        try:
            data = _yaml().load(text)
        except MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            code = "P004" if "duplicate key" in str(e.problem or "") else "P001"
            msg = (e.problem or "YAML syntax error").strip()
            if code == "P001" and e.context:
                msg = f"{e.context}: {msg}"
            self.err(code, msg, self.pos(mark.line, mark.column) if mark else self.pos())
            return None
        except YAMLError as e:
            self.err("P001", f"YAML error: {e}", self.pos())
            return None
        if data is None:
            self.err("P002", "catalog file is empty; expected a mapping with 'prompts:'", self.pos())
            return None
        if not isinstance(data, CommentedMap):
            self.err("P002", f"catalog file must be a mapping, not a {_kind(data)}", self.pos())
            return None
        for k in data:
            if k not in TOP_KEYS:
                self.err("P002", f"unknown key '{k}'", self.key_pos(data, k), did_you_mean(str(k), TOP_KEYS))

        if "language" in data:
            declared = data["language"]
            if not langs.is_valid_tag(declared):
                self.err("P006", f"'language' must be a language tag like 'zh-CN', not {declared!r}",
                         self.value_pos(data, "language"))
            elif langs.canonical_tag(declared) != self.lang:
                self.err("P006", f"'language: {declared}' does not match the file name '{self.file.name}'",
                         self.value_pos(data, "language"), f"rename the file to '{declared}.yaml'")

        voice = data.get("voice")
        if voice is not None and (not isinstance(voice, str) or not re.fullmatch(r"[A-Za-z0-9_+/.-]{1,64}", voice)):
            self.err("P002", f"'voice' must be an espeak-ng voice name like 'cmn-latn-pinyin', not {voice!r}",
                     self.value_pos(data, "voice"))
            voice = None
        if voice is None:
            voice = langs.default_voice(self.lang)
            if voice is None and "voice" not in data:
                self.err("P007", f"no default voice for language '{self.lang}'; set 'voice:' in the catalog",
                         self.pos())

        rate = data.get("rate", langs.default_rate(self.lang))
        if isinstance(rate, bool) or not isinstance(rate, int) or not langs.MIN_RATE <= rate <= langs.MAX_RATE:
            self.err("P002", f"'rate' must be an integer from {langs.MIN_RATE} to {langs.MAX_RATE} "
                     f"(words per minute), not {rate!r}", self.value_pos(data, "rate"))
            rate = langs.default_rate(self.lang)

        recordings = self._recordings_dir(data, catalog_dir)

        prompts_node = data.get("prompts")
        if "prompts" not in data:
            self.err("P002", "missing 'prompts:' mapping", self.pos())
            prompts_node = {}
        elif prompts_node is None:
            prompts_node = {}
        elif not isinstance(prompts_node, CommentedMap):
            self.err("P002", f"'prompts' must be a mapping of prompt id to text, not a {_kind(prompts_node)}",
                     self.value_pos(data, "prompts"))
            prompts_node = {}

        prompts: dict[str, PromptDef] = {}
        for pid in prompts_node:
            d = self._prompt(prompts_node, pid, recordings)
            if d is not None:
                prompts[d.id] = d
        if recordings is not None and recordings.is_dir():
            self._orphan_recordings(recordings, prompts, data)
        return LanguageDef(self.lang, self.file, voice, rate, recordings, MappingProxyType(prompts))

    def _recordings_dir(self, data: CommentedMap, catalog_dir: Path) -> Path | None:
        if "recordings" not in data or data["recordings"] is None:
            return None
        rec = data["recordings"]
        if not isinstance(rec, str) or not rec.strip():
            self.err("P002", f"'recordings' must be a directory path, not {rec!r}",
                     self.value_pos(data, "recordings"))
            return None
        path = Path(rec)
        path = (path if path.is_absolute() else catalog_dir / path).absolute()
        if not path.is_dir():
            self.err("P009", f"recordings directory '{rec}' does not exist ({path}); all prompts will be synthesized",
                     self.value_pos(data, "recordings"), severity="warning")
        return path

    def _prompt(self, node: CommentedMap, pid: Any, recordings: Path | None) -> PromptDef | None:
        kpos = self.key_pos(node, pid)
        if not isinstance(pid, str) or not PROMPT_ID.match(pid):
            self.err("P005", f"invalid prompt id {pid!r}: use letters, digits, '_', '.', '-' "
                     "(it names the recording file)", kpos)
            return None
        value = node[pid]
        vpos = self.value_pos(node, pid)
        explicit_rec = None
        if isinstance(value, CommentedMap):
            for k in value:
                if k not in PROMPT_KEYS:
                    self.err("P002", f"unknown key '{k}' in prompt '{pid}'", self.key_pos(value, k),
                             did_you_mean(str(k), PROMPT_KEYS))
            if "recording" in value:
                r = value["recording"]
                if not isinstance(r, str) or not r.strip():
                    self.err("P002", f"'recording' of prompt '{pid}' must be a file name, not {r!r}",
                             self.value_pos(value, "recording"))
                elif recordings is None and not Path(r).is_absolute():
                    self.err("P002", f"prompt '{pid}' names a recording but the catalog has no 'recordings:' "
                             "directory", self.value_pos(value, "recording"))
                else:
                    explicit_rec = (Path(r), self.value_pos(value, "recording"))
            if "text" not in value:
                self.err("P002", f"prompt '{pid}' has no 'text'", kpos)
                return None
            vpos, node, value_key, value = self.value_pos(value, "text"), value, "text", value["text"]
        else:
            value_key = pid
        if not isinstance(value, str):
            hint = "quote it" if isinstance(value, (int, float)) else None
            self.err("P002", f"text of prompt '{pid}' must be a string, not a {_kind(value)}", vpos, hint)
            return None
        if not value.strip():
            self.err("P002", f"text of prompt '{pid}' is empty", vpos)
            return None
        try:
            variables, _ = parse_template(value)
        except TemplateError as e:
            self.err("P003", f"prompt '{pid}': {e.message}", self._template_pos(node, value_key, vpos, e.lineno))
            return None
        self._check_filters(pid, value, vpos)
        is_tmpl = "{{" in value or "{%" in value
        recording = self._recording(pid, recordings, explicit_rec, is_tmpl and bool(variables - {"lang"}), vpos)
        return PromptDef(pid, self.lang, value, variables, is_tmpl, recording, kpos)

    def _template_pos(self, node: Any, key: Any, vpos: Position, lineno: int | None) -> Position:
        if not lineno:
            return vpos
        value = node[key]
        style_block = type(value).__name__ in ("LiteralScalarString", "FoldedScalarString")
        line = vpos.line + lineno if style_block else vpos.line + lineno - 1
        if not style_block and lineno == 1:
            return vpos
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return Position(vpos.file, line, len(src) - len(src.lstrip()) + 1)

    def _check_filters(self, pid: str, text: str, vpos: Position) -> None:
        if langs.family(self.lang) is not None:
            return
        from jinja2 import nodes

        from engine.templating import environment

        used = {n.name for n in environment().parse(text).find_all(nodes.Filter)} & set(SPEECH_FILTERS)
        if used:
            self.err("P008", f"prompt '{pid}' uses the speech filter '{sorted(used)[0]}', which has no rules "
                     f"for language '{self.lang}' (supported: zh*, en*)", vpos)

    def _recording(self, pid: str, recordings: Path | None, explicit: tuple[Path, Position] | None,
                   dynamic: bool, vpos: Position) -> Path | None:
        if explicit is not None:
            rel, rpos = explicit
            path = rel if rel.is_absolute() else recordings / rel
            if not path.is_file():
                self.err("P009", f"recording '{rel}' of prompt '{pid}' does not exist ({path})", rpos)
                return None
        else:
            if recordings is None:
                return None
            path = recordings / f"{pid}.wav"
            if not path.is_file():
                return None
            rpos = vpos
        if dynamic:
            self.err("P009", f"recording {path.name} ignored: prompt '{pid}' has template variables, "
                     "a fixed recording cannot speak them", rpos, severity="warning")
            return None
        problem, fatal = _wav_problem(path)
        if problem:
            self.err("P009", f"recording {path.name} of prompt '{pid}': {problem}", rpos,
                     severity="error" if fatal else "warning")
            if fatal:
                return None
        return path

    def _orphan_recordings(self, recordings: Path, prompts: dict[str, PromptDef], data: CommentedMap) -> None:
        used = {p.recording.resolve() for p in prompts.values() if p.recording}
        for f in sorted(recordings.glob("*.wav")):
            if f.stem not in prompts and f.resolve() not in used:
                self.err("P009", f"recording {f.name} matches no prompt in {self.file.name}",
                         self.value_pos(data, "recordings"), did_you_mean(f.stem, prompts), severity="warning")


def _wav_problem(path: Path) -> tuple[str | None, bool]:
    """(problem, fatal) for a recording; telephony format is 8 kHz mono 16-bit PCM."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, ch, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
    except (wave.Error, EOFError, OSError) as e:
        return f"not a readable PCM WAV file ({e})", True
    if frames == 0:
        return "the file holds no audio", True
    if (rate, ch, width) != (8000, 1, 2):
        return (f"{rate} Hz, {ch} channel(s), {8 * width}-bit; telephony format is 8000 Hz mono 16-bit "
                "(FreeSWITCH will resample on every play)"), False
    return None, False


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "mapping"
    if isinstance(v, (list, tuple)):
        return "list"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def load_catalog(root: Path | str, name: str, *, display_root: Path | None = None) -> Catalog:
    """Load ``root/name/*.yaml``.  Raises :class:`CatalogError` on any error.

    Positions name files relative to ``display_root`` (default: the cwd when the files are
    under it, else absolute).
    """
    root = Path(root)
    cat_dir = root / name
    where = Position(str(cat_dir), 1, 1)
    if not isinstance(name, str) or not CATALOG_NAME.match(name):
        raise CatalogError([Diagnostic("P010", f"invalid catalog name {name!r}", where)])
    if not cat_dir.is_dir():
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise CatalogError([Diagnostic("P010", f"prompt catalog '{name}' not found (no directory {cat_dir})",
                                       where, hint=did_you_mean(name, known))])
    files = sorted(p for p in cat_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise CatalogError([Diagnostic("P010", f"prompt catalog '{name}' has no language files "
                                       "(expected e.g. zh-CN.yaml, en.yaml)", where)])
    diags: list[Diagnostic] = []
    languages: dict[str, LanguageDef] = {}
    for f in files:
        display = _display(f, display_root)
        if not langs.is_valid_tag(f.stem):
            diags.append(Diagnostic("P006", f"file name '{f.name}' is not a language tag "
                                    "(expected e.g. zh-CN.yaml, en.yaml)", Position(display, 1, 1)))
            continue
        lang = langs.canonical_tag(f.stem)
        if lang in languages:
            diags.append(Diagnostic("P006", f"language '{lang}' is defined twice "
                                    f"({languages[lang].file.name} and {f.name})", Position(display, 1, 1)))
            continue
        loader = _Loader(f, display, lang)
        ldef = loader.load(cat_dir)
        diags.extend(loader.diags)
        if ldef is not None:
            languages[lang] = ldef
    if any(d.severity == "error" for d in diags):
        raise CatalogError(sorted(diags, key=lambda d: d.sort_key))
    return Catalog(name, root, cat_dir, MappingProxyType(languages), tuple(sorted(diags, key=lambda d: d.sort_key)))


def list_catalogs(root: Path | str) -> list[str]:
    """Names of the catalog directories under ``root`` (those holding a .yaml file)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and any(q.suffix in (".yaml", ".yml") for q in p.iterdir()))


def _display(path: Path, display_root: Path | None) -> str:
    base = display_root or Path.cwd()
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
