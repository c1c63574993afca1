"""ivrflow's storage layer: hospital data, money ledger, bookings, consultations, CDRs.

``Store`` is synchronous; call it from asyncio with ``asyncio.to_thread``.  Schema changes
go through the Alembic migrations shipped in ``engine/store/migrations``.
"""

from .errors import (
    IntegrityViolation,
    InvalidInput,
    NotFound,
    SchemaMissing,
    StoreConflict,
    StoreError,
    StoreUnavailable,
)
from .pin import ScryptParams
from .results import Policy
from .store import Store

DEFAULT_URL = "sqlite:///var/ivrflow.db"

__all__ = [
    "Store", "Policy", "ScryptParams", "DEFAULT_URL",
    "StoreError", "InvalidInput", "NotFound", "StoreUnavailable", "SchemaMissing",
    "StoreConflict", "IntegrityViolation",
]
