"""A cuttable TCP proxy for partition tests (asyncio, one loop thread for all proxies).

Each proxy carries one direction of one service (node a -> node b's PostgreSQL, say), so a->b and
b->a can be cut independently. Modes: ``pass``; ``cut`` (existing connections are reset and new
ones refused, as when a link goes down and the peer's RST or ICMP comes back); ``blackhole``
(connections stay open but every byte is dropped: the peer looks hung, timeouts must fire).
"""

from __future__ import annotations

import asyncio
import threading


class Proxy:
    def __init__(self, net: "ProxyNet", target: tuple[str, int]) -> None:
        self.net = net
        self.target = target
        self.mode = "pass"
        self.port = 0
        self._conns: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._conns.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        self._conns.difference_update((writer, up_writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "cut":
            for conn in list(self._conns):
                conn.transport.abort()
            self._conns.clear()

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "cut", "blackhole"), mode
        self.net.call(self._set_mode, mode)


class ProxyNet:
    """The loop thread and every proxy of a test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="proxynet")
        self.thread.start()
        self.proxies: dict[tuple[str, str], Proxy] = {}

    def add(self, key: tuple[str, str], target: str) -> Proxy:
        host, port = target.rsplit(":", 1)
        proxy = Proxy(self, (host, int(port)))
        asyncio.run_coroutine_threadsafe(proxy._start(), self.loop).result(5)
        self.proxies[key] = proxy
        return proxy

    def call(self, fn, *args) -> None:
        done = threading.Event()

        def run() -> None:
            fn(*args)
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(5)

    def set(self, src: str, mode: str) -> None:
        """Set the mode of every proxy carrying connections opened by node ``src``."""
        for (node, _service), proxy in self.proxies.items():
            if node == src:
                proxy.set_mode(mode)

    def close(self) -> None:
        for proxy in self.proxies.values():
            if proxy._server:
                self.loop.call_soon_threadsafe(proxy._server.close)
            proxy.set_mode("cut")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
