"""The WebSocket gateway: the exchange's trust boundary (specs/ws-api.md).

Modules, one concern each: :mod:`.protocol` (frames), :mod:`.auth` (JWT),
:mod:`.limits` (token buckets, connection caps), :mod:`.breaker` (circuit
breaker), :mod:`.orders` (ids, live orders, requests in flight), :mod:`.links`
(CMP to risk and the engine streams), :mod:`.core` (routing), :mod:`.session`
(one connection), :mod:`.server` (websockets on uvloop, `rsx gateway`).
"""

from .core import Gateway
from .server import GatewayServer, run

__all__ = ["Gateway", "GatewayServer", "run"]
