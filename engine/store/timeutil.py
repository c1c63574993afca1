"""Time handling: timestamps are timezone-aware and stored as UTC; clinic days are local dates."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

from .errors import InvalidInput

UTC = dt.timezone.utc


class UTCDateTime(TypeDecorator):
    """Aware datetime in Python, naive UTC in the database (same on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        return require_aware(value, "timestamp").astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def require_aware(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{what} must be timezone-aware (got naive {value.isoformat()})")
    return value


_DATE_RE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


def parse_date(value: Any, what: str = "date") -> dt.date:
    """Accept a date, or a string 'YYYY-MM-DD' / 'YYYYMMDD' (as keyed on a phone)."""
    if isinstance(value, dt.datetime):
        raise InvalidInput(f"{what} must be a date, not a datetime")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        m = _DATE_RE.match(value.strip())
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                pass
        raise InvalidInput(f"{what} {value!r} is not a valid date (YYYY-MM-DD or YYYYMMDD)")
    raise InvalidInput(f"{what} must be a date or a string, got {type(value).__name__}")
