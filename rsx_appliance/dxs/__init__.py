"""DXS: replay a stream over TCP from any seq, then follow it live (specs/dxs.md).

:class:`DxsServer` serves one stream's WAL directory; :class:`DxsConsumer` is
the reusable client (an async iterator of numpy-indexed batches that
reconnects by itself); :class:`TipFile` persists a consumer tip.
"""

from .consumer import DxsConsumer, TipFile
from .protocol import DxsProtocolError, DxsRejected
from .server import DxsServer

__all__ = ["DxsServer", "DxsConsumer", "TipFile", "DxsRejected", "DxsProtocolError"]
