"""The history store (specs/store.md): streams -> SQL, exactly once by (stream, seq).

``open_store(url)`` / :class:`AsyncStore` answer the history queries (fills,
funding, orders, liquidations, PnL); ``rsx store`` runs the ingest process
(:mod:`.service`); :mod:`.schema` holds the schema and its migrations.
"""

from .queries import (AsyncStore, Cursor, FillRow, FundingRow, LiquidationRow, OrderRow, Page, PnlRow, Store,
                      open_store)
from .errors import (StoreError, StoreLockedError, StoreQueryError, StoreSchemaError, StoreStreamError,
                     StoreUnavailableError)

__all__ = ["open_store", "AsyncStore", "Store", "Cursor", "Page", "FillRow", "FundingRow", "OrderRow",
           "LiquidationRow", "PnlRow", "StoreError", "StoreLockedError", "StoreQueryError", "StoreSchemaError", "StoreStreamError",
           "StoreUnavailableError"]
