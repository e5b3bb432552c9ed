"""Runs the aiohttp application over HTTPS on its own event loop in a background thread.

Why: tests start a simulator in-process (no subprocess, quick teardown) while their own code
makes blocking HTTP calls; a dedicated loop thread serves many keep-alive connections at once,
which the concurrency and throttling behaviour depends on. The CLI uses the same runner.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading

from aiohttp import web

log = logging.getLogger("graphsim")


class ServerThread:
    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self._app = app
        self._ssl = ssl_context
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(512)
        self._sock.setblocking(False)
        self.host = host
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"graphsim-{self.port}", daemon=True)

    def start(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("graphsim server did not start within 30 s")
        if self._error:
            raise RuntimeError("graphsim server failed to start") from self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as e:  # reported to start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.SockSite(self._runner, self._sock, ssl_context=self._ssl, backlog=512)
        await site.start()

    async def _shutdown(self) -> None:
        server = self._runner.server
        transports = [p.transport for p in (server.connections if server is not None else []) if p.transport]
        await self._runner.cleanup()
        # A TLS connection that a client keeps alive would otherwise wait for the client's close_notify
        # (up to 30 s) and outlive the loop: drop the underlying sockets of whatever is left.
        for transport in transports:
            raw = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
            for t in (transport, raw):
                if t is not None and not getattr(t, "_closed", False):
                    t.abort()
        for _ in range(3):
            await asyncio.sleep(0)

    def call(self, coro, timeout: float = 30):
        """Run a coroutine on the server loop from another thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            try:
                self.call(self._shutdown(), timeout=15)
            except Exception:
                log.exception("graphsim: error while stopping the server")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        try:
            self._sock.close()
        except OSError:
            pass
