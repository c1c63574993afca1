from .base import Action, ActionContext, Result
from .registry import Registry, default_registry, load_entry_points, PluginError

__all__ = ["Action", "ActionContext", "Result", "Registry", "default_registry",
           "load_entry_points", "PluginError"]
