"""Loading actions through the ``ivrflow.actions`` entry-point group.

Built-in actions are registered in setup.cfg exactly like third-party plugins, so
``ivrflow actions`` shows one list whatever the origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Iterable, Mapping

import jsonschema

from .base import Action

GROUP = "ivrflow.actions"


class PluginError(Exception):
    pass


@dataclass(frozen=True)
class LoadedAction:
    action: Action
    origin: str  # distribution name that registered it


class Registry(Mapping[str, Action]):
    """An immutable name -> Action mapping."""

    def __init__(self, actions: Iterable[Action] = (), origins: Mapping[str, str] | None = None):
        self._actions: dict[str, Action] = {}
        self.origins: dict[str, str] = dict(origins or {})
        for a in actions:
            self._add(a)

    def _add(self, action: Action) -> None:
        if action.name in self._actions:
            raise PluginError(f"action {action.name!r} registered twice")
        try:
            jsonschema.Draft202012Validator.check_schema(dict(action.params))
        except jsonschema.SchemaError as e:
            raise PluginError(f"action {action.name!r}: invalid parameter schema: {e.message}") from e
        self._actions[action.name] = action

    def __getitem__(self, name: str) -> Action:
        return self._actions[name]

    def __iter__(self):
        return iter(sorted(self._actions))

    def __len__(self) -> int:
        return len(self._actions)

    def with_actions(self, *actions: Action) -> "Registry":
        """A copy with extra actions (used by tests and embedding applications)."""
        return Registry([*self._actions.values(), *actions], self.origins)


_default: Registry | None = None


def load_entry_points() -> Registry:
    actions: list[Action] = []
    origins: dict[str, str] = {}
    errors: list[str] = []
    for ep in entry_points(group=GROUP):
        try:
            obj = ep.load()
        except Exception as e:  # a broken plugin must not hide the others
            errors.append(f"{ep.name} ({ep.value}): {type(e).__name__}: {e}")
            continue
        if not isinstance(obj, Action):
            errors.append(f"{ep.name} ({ep.value}): not an engine.actions.Action")
            continue
        if obj.name != ep.name:
            errors.append(f"{ep.name} ({ep.value}): entry point name differs from action name {obj.name!r}")
            continue
        actions.append(obj)
        origins[obj.name] = ep.dist.name if ep.dist is not None else "?"
    if errors:
        raise PluginError("cannot load actions:\n  " + "\n  ".join(errors))
    return Registry(actions, origins)


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = load_entry_points()
    return _default
