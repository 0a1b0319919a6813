"""Operator actions: halt and resume a symbol through its ME's control mailbox (specs/console.md 6).

The console never frames a record itself: it asks the running matching engine
for its current configuration with the new status (``MeStats.control``,
specs/me.md 5), and the engine applies it, writes CONFIG_APPLIED on its stream
and answers with the version it applied. Who may ask is decided before: an
operator session exists only for a valid operator token.
"""

from __future__ import annotations

from pathlib import Path

from ..codes import SymbolStatus
from ..config import Config
from ..errors import ConfigError, RsxError
from ..status import read_status_dir
from .collect import me_stats

__all__ = ["Operator", "OperatorError", "ACTIONS"]

#: action -> the symbol status it asks for
ACTIONS = {"halt": SymbolStatus.HALTED, "resume": SymbolStatus.ACTIVE}


class OperatorError(Exception):
    """A refused action: ``code`` (specs/console.md 6) and a message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Operator:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def act(self, action: str, symbol: int | str) -> list:
        """Apply ``action`` to ``symbol`` (blocking up to 5 s): [action, name, status, config version]."""
        wanted = ACTIONS[action]
        try:
            sym = self.cfg.symbol(symbol)
        except ConfigError:
            raise OperatorError(3, f"unknown symbol {symbol!r}") from None
        if sym.name not in self.cfg.engine_symbols:
            raise OperatorError(3, f"{sym.name} has no matching engine on this host")
        name = f"me.{sym.name}"
        doc = read_status_dir(self.cfg.data_dir / "run").get(name, {})
        path = Path(doc.get("stats_file") or self.cfg.process(name).data_dir / "me.stats")
        stats, why = me_stats(path, writable=True)
        if stats is None:
            raise OperatorError(5, why)
        try:
            current = stats.read()
            if not current.get("alive"):
                raise OperatorError(5, f"the matching engine of {sym.name} is not running")
            cfg = current["config"]
            if cfg["status"] == wanted:
                return [action, sym.name, wanted.name.lower(), cfg["config_version"]]
            try:
                applied = stats.control(status=int(wanted))
            except RsxError as exc:   # ControlError (refused, no answer), StaleConfigError (a race)
                raise OperatorError(4, f"{sym.name}: {exc}") from None
            return [action, sym.name, SymbolStatus(applied["status"]).name.lower(), applied["config_version"]]
        finally:
            stats.close()
