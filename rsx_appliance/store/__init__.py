"""The history store (specs/store.md): streams -> SQL, exactly once by (stream, seq).

``open_store(url)`` / :class:`AsyncStore` answer the history queries (fills,
funding, orders, liquidations, PnL); ``rsx store`` runs the ingest process
(:mod:`.service`); :mod:`.schema` holds the schema and its migrations.
"""

from .errors import (StoreError, StoreLockedError, StoreQueryError, StoreSchemaError, StoreStreamError,
                     StoreUnavailableError)

__all__ = ["StoreError", "StoreLockedError", "StoreQueryError", "StoreSchemaError", "StoreStreamError",
           "StoreUnavailableError"]
