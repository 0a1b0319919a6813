"""The web console (`rsx console`, specs/console.md): trade and operate the exchange from a browser.

- :mod:`.server`: the listener (pages, JSON, the operator WebSocket) and `/api/info`;
- :mod:`.collect`: the operate page's snapshot; :mod:`.processes` (status files, pids, streams) and
  :mod:`.latency` (live windows over the ME's histograms) feed it;
- :mod:`.operator`: halt and resume a symbol through its ME's control mailbox;
- :mod:`.app`: the process (`rsx console`); ``static/``: the pages, shipped as package data.
"""

from .app import ConsoleApp

__all__ = ["ConsoleApp"]
