"""uvicorn tuned for chinwag: the handshake deadline and a clean shutdown (the
direct-write fast path for fan-out is in ``direct_write.py``).

- A TCP connection that has not finished its HTTP request (the WebSocket handshake
  included) within the handshake timeout is dropped: uvicorn alone would keep a
  half-open handshake forever.
- On shutdown the listeners close first; connections already accepted get
  ``SHUTDOWN_HANDSHAKE_GRACE`` to finish their handshake, so none is dropped unanswered.
- On shutdown every WebSocket is closed with 1012 (service restart) by chinwag,
  after the frames already queued for it, before uvicorn's own shutdown (which
  would write its close frame ahead of them); the lifespan shutdown then lets
  running AI replies finish within DRAIN_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import uvicorn

from chinwag.settings import Settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools missing: pure-Python parser
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

HANDSHAKE_TIMEOUT = 10.0
#: At shutdown, how long connections already accepted may take to finish their
#: request head or WebSocket handshake; a client sends them within a round trip.
SHUTDOWN_HANDSHAKE_GRACE = 2.0
#: A full collection after every 100 of the middle generation's, not Python's 10.
#: Every connection keeps ~75 objects the collector tracks, so in a connect storm the
#: heap keeps growing by the quarter that lets a full collection run: 10 of them
#: (1.4 s of CPU) in 10,000 connects, a sixth of the storm's CPU (docs/performance.md).
FULL_COLLECTION_EVERY = 100


class DeadlineHttpProtocol(_Base):
    handshake_timeout = HANDSHAKE_TIMEOUT

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.handshake_timeout, self._handshake_expired
        )

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _handshake_expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_with_deadline(timeout: float) -> type[DeadlineHttpProtocol]:
    return type("DeadlineHttp", (DeadlineHttpProtocol,), {"handshake_timeout": timeout})


def uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """The ``uvicorn.Config`` arguments of a chinwag process (one, or each worker)."""
    from chinwag.server.direct_write import DirectWebSocketProtocol

    return dict(
        host=host,
        port=port,
        http=protocol_with_deadline(settings.websocket_handshake_timeout),
        ws=DirectWebSocketProtocol,
        ws_ping_interval=settings.websocket_heartbeat_interval,
        ws_ping_timeout=None,  # liveness is DirectWebSocketProtocol's: any frame counts
        ws_max_size=settings.ws_max_message_size,
        ws_per_message_deflate=False,
        # Only listed proxies' X-Forwarded-For/-Proto count; unset trusts none
        # (uvicorn alone would trust 127.0.0.1).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
        timeout_graceful_shutdown=10,
        lifespan="on",
    )


class ChinwagServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self._finish_handshakes()
        app = getattr(self.config, "loaded_app", None)
        runtime = _find_runtime(app)
        if runtime is not None:
            await runtime.close_sockets()
        await super().shutdown(sockets)

    async def _finish_handshakes(self) -> None:
        """Let connections accepted before the listeners closed finish their HTTP
        request or WebSocket handshake (up to ``SHUTDOWN_HANDSHAKE_GRACE``): uvicorn
        would drop them without an answer, which a client sees as a failed connect
        rather than a 1012 to reconnect on. Under ``--workers`` the kernel hands a
        worker new connections until the moment it stops accepting."""
        step = 0.01  # uvicorn's protocols signal nothing: look again every 10 ms
        for _ in range(int(SHUTDOWN_HANDSHAKE_GRACE / step)):
            if not any(_handshaking(c) for c in self.server_state.connections):
                return
            await asyncio.sleep(step)


def _handshaking(connection: Any) -> bool:
    if getattr(connection, "_deadline", None) is not None:
        return True  # an HTTP connection whose request head has not arrived
    return getattr(connection, "handshake_complete", True) is False  # a WebSocket not accepted yet


def _find_runtime(app: Any) -> Any:
    # Walk uvicorn's middleware wrappers down to the FastAPI app.
    for _ in range(10):
        if app is None:
            return None
        state = getattr(app, "state", None)
        if state is not None and hasattr(state, "runtime"):
            return state.runtime
        app = getattr(app, "app", None)
    return None
