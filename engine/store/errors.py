"""Errors raised by the store.  Every database failure surfaces as a ``StoreError``."""

from __future__ import annotations


class StoreError(Exception):
    """Base class: something went wrong in the database layer (nothing was half-written)."""


class InvalidInput(StoreError, ValueError):
    """An argument is malformed (bad date, negative amount, PIN not digits, ...)."""


class NotFound(StoreError, LookupError):
    """An administrative operation named a record that does not exist."""


class StoreUnavailable(StoreError):
    """The database cannot be reached."""


class SchemaMissing(StoreError):
    """The database has no (or an outdated) schema: run ``ivrflow db upgrade``."""


class StoreConflict(StoreError):
    """A concurrent transaction kept conflicting with this one; retries were exhausted."""


class IntegrityViolation(StoreError):
    """A database constraint rejected the change (the transaction was rolled back)."""
