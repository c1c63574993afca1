"""The Store: every operation the hospital actions need, each one database transaction.

Synchronous (SQLAlchemy Core on a pooled engine, thread-safe): the async runtime calls it
with ``await asyncio.to_thread(store.book, ...)``.  See docs/store.md for the full API.
"""

from __future__ import annotations

from .accounts import AccountsMixin
from .booking import BookingMixin
from .consult import ConsultMixin
from .services import ServicesMixin


class Store(AccountsMixin, BookingMixin, ConsultMixin, ServicesMixin):
    """``Store(url_or_engine, *, tz="UTC", clock=None, max_pin_failures=3,
    pin_lock_seconds=1800, pin_params=ScryptParams(), max_exam_failures=5,
    exam_lock_seconds=1800)``.  ``url``: ``sqlite:///path.db`` or ``postgresql://...``
    (psycopg 3).  The schema must exist (``ivrflow db upgrade`` or ``migrate.upgrade``)."""
