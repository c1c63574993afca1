"""Integration support for the ``http`` and ``sql`` actions: deployment configuration,
the HTTP client, external databases, and the thread pool that keeps blocking I/O off the
event loop.  See docs/integrations.md."""

from .config import ConfigError, HttpSettings, IntegrationError, SqlSettings, http_settings, load_config, sql_settings

__all__ = ["ConfigError", "IntegrationError", "HttpSettings", "SqlSettings", "http_settings", "sql_settings",
           "load_config"]
