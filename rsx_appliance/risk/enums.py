"""The wire enums of native/include/rsx/types.h the risk engine uses (re-exported from rsx_appliance.codes)."""

from __future__ import annotations

from ..codes import LiqKind, OrderFlag, Side, Stp, SymbolStatus, Tif

__all__ = ["Side", "Tif", "OrderFlag", "Stp", "LiqKind", "SymbolStatus"]
