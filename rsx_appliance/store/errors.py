"""The store's exceptions (specs/store.md): each maps to an `rsx` exit code."""

from __future__ import annotations

from ..errors import RsxError

__all__ = ["StoreError", "StoreSchemaError", "StoreUnavailableError", "StoreLockedError",
           "StoreQueryError", "StoreStreamError"]


class StoreError(RsxError):
    """Base class of the history store's errors."""


class StoreSchemaError(StoreError):
    """The database has no store schema, or one newer than this code (never written by older code)."""

    exit_code = 2


class StoreUnavailableError(StoreError):
    """The database cannot be reached or opened (the caller may retry later)."""

    exit_code = 3


class StoreLockedError(StoreError):
    """Another `rsx store` holds the writer lock of this database."""

    exit_code = 3


class StoreQueryError(StoreError, ValueError):
    """A query argument is out of range or of the wrong kind; nothing was run."""

    exit_code = 2


class StoreStreamError(StoreError):
    """A producer refused the replay, or a stream broke continuity: the store stops rather than skip."""

    exit_code = 1
