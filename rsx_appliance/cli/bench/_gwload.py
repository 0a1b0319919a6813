"""Load for `rsx bench gateway`: a minimal WebSocket client, and the other stacks' echo servers.

The client is a bare asyncio protocol (handshake, frames masked with a zero
key as RFC 6455 allows, replies split and parsed with msgspec), so it costs the
machine far less than any library client and never limits the gateway. The
"stacks" are minimal servers doing the gateway's per-frame work (parse and
validate an N with the gateway's own protocol module, answer one U) on each
WebSocket library tried, measured by the same client in the same run.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time

import msgspec

__all__ = ["RawClient", "connect", "serve_stack", "STACKS"]

_decode = msgspec.json.Decoder().decode


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload      # mask key 0: the payload is unchanged


class RawClient(asyncio.Protocol):
    def __init__(self, on_message) -> None:
        self.on_message = on_message
        self.buf = bytearray()
        self.handshaken = asyncio.get_running_loop().create_future()
        self.transport = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.handshaken.done():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[:end + 4]
            status = int(head.split(b" ", 2)[1])
            if status != 101:
                self.handshaken.set_exception(ConnectionError(f"HTTP {status}: {bytes(self.buf)[:200]!r}"))
                return
            self.handshaken.set_result(None)
        buf = self.buf
        pos, n = 0, len(buf)
        while n - pos >= 2:
            ln = buf[pos + 1] & 0x7F
            hl = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln, hl = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln, hl = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if n - pos < hl + ln:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 1:
                self.on_message(bytes(buf[pos + hl:pos + hl + ln]))
            elif opcode == 8 and not self.closed.done():
                self.closed.set_result(bytes(buf[pos + hl:pos + hl + ln]))
            pos += hl + ln
        del buf[:pos]

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes) -> None:
        self.transport.write(data)


async def connect(host: str, port: int, token: str | None, on_message, path: str = "/ws") -> RawClient:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: RawClient(on_message), host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    proto.send((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n").encode())
    await asyncio.wait_for(proto.handshaken, 10)
    return proto


# -- the other stacks: the gateway's per-frame work on each library -----------------------------

def _work():
    from ...gateway.protocol import frame, parse

    counter = [0]

    def handle(data) -> bytes:
        kind, f = parse(data)
        counter[0] += 1
        return frame("U", [f"{counter[0]:032x}", 1, 0, f[3], 0, f[4], f[0], f[1], f[2]])
    return handle


async def _serve_websockets(port: int, ready) -> None:
    from websockets.asyncio.server import serve

    handle = _work()

    from websockets import ConnectionClosed

    async def handler(ws):
        try:
            async for msg in ws:
                await ws.send(handle(msg), text=True)
        except ConnectionClosed:   # the load client closes without a close frame
            pass
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, max_size=4096):
        ready()
        await asyncio.Event().wait()


async def _serve_picows(port: int, ready) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    handle = _work()

    class L(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.TEXT:
                transport.send(WSMsgType.TEXT, handle(frame.get_payload_as_bytes()))
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    server = await ws_create_server(lambda _r: L(), "127.0.0.1", port, max_frame_size=4096)
    ready()
    async with server:
        await asyncio.Event().wait()


async def _serve_aiohttp(port: int, ready) -> None:
    from aiohttp import WSMsgType, web

    handle = _work()

    async def ws_handler(request):
        ws = web.WebSocketResponse(compress=False, max_msg_size=4096)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_frame(handle(msg.data), WSMsgType.TEXT)
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    ready()
    await asyncio.Event().wait()


STACKS = {"websockets": _serve_websockets, "picows": _serve_picows, "aiohttp": _serve_aiohttp}


def serve_stack(name: str, port: int, conn) -> None:
    """Child process body: serve one stack on uvloop until killed; report readiness on ``conn``."""
    import uvloop

    async def main():
        try:
            await STACKS[name](port, lambda: conn.send("ready"))
        except Exception as exc:  # a missing optional library: say so
            conn.send(f"error: {type(exc).__name__}: {exc}")

    uvloop.run(main())


def cpu_seconds(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def sleep_until(due_ns: int, clock=time.perf_counter_ns) -> None:
    """An open-loop sender's wait for its next send time on ``clock``: sleep while it is more than 0.2 ms away,
    then yield to the loop until it comes (a sender behind its schedule returns at once)."""
    while True:
        now = clock()
        if now >= due_ns:
            return
        if due_ns - now > 200_000:
            await asyncio.sleep((due_ns - now - 100_000) / 1e9)
        else:
            await asyncio.sleep(0)


def now_ns() -> int:
    return time.perf_counter_ns()
