"""uvicorn tuned for chinwag.

- A TCP connection that has not finished its HTTP request (the WebSocket handshake
  included) within the handshake timeout is dropped: uvicorn alone would keep a
  half-open handshake forever.
- On shutdown (SIGTERM or SIGINT, in a single process or a worker of
  ``uvicorn.supervisors.Multiprocess``) uvicorn asks every connection's protocol to
  shut down. A chat connection then closes the chinwag way: what its outbox holds
  is flushed, then the close frame with 1012 goes out (uvicorn alone would write
  the close frame at once, ahead of queued frames). uvicorn waits for those
  sockets; the app's lifespan shutdown then lets running AI replies finish.

Both protocol factories are importable objects (a class, a ``functools.partial``),
so a config holding them pickles into the supervisor's worker processes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools missing: pure-Python parser
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

HANDSHAKE_TIMEOUT = 10.0


class DeadlineHttpProtocol(_Base):
    def __init__(self, *args: Any, handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handshake_timeout = handshake_timeout

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.handshake_timeout, self._handshake_expired)

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


def protocol_with_deadline(timeout: float) -> Callable[..., DeadlineHttpProtocol]:
    return functools.partial(DeadlineHttpProtocol, handshake_timeout=timeout)


# ---- the fan-out fast path ----------------------------------------------------

from uvicorn.protocols.websockets.websockets_sansio_impl import (  # noqa: E402
    WebSocketsSansIOProtocol,
)
from websockets.protocol import State  # noqa: E402

from chinwag.core.outbox import OutFrame  # noqa: E402

DIRECT_EXTENSION = "chinwag.direct_write"
#: ASGI scope extension: ``register(callback)``; uvicorn's shutdown then calls
#: ``callback`` instead of closing the socket itself.
SHUTDOWN_EXTENSION = "chinwag.on_shutdown"


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 §5.2), as a
    server sends it. Built once per broadcast and written to every recipient."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


class _DirectInput:
    """A boolean of ``DirectWebSocketProtocol`` whose every change recomputes its
    ``direct_ok`` (False until first set)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: DirectWebSocketProtocol | None, owner: type) -> bool:
        return bool(getattr(obj, self.slot, False))

    def __set__(self, obj: DirectWebSocketProtocol, value: bool) -> None:
        setattr(obj, self.slot, value)
        obj._recompute()


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sansio WebSocket protocol plus a synchronous write for fan-out.

    Through ASGI every frame costs a ``send`` coroutine and per-connection framing.
    A room event is the same bytes for every recipient (server frames are not
    masked, and no extension is negotiated: permessage-deflate is off), so the hub
    frames it once and writes it straight to each transport while that transport
    accepts writes; otherwise the frame waits in the connection's outbox.

    ``write_frame`` runs once per recipient of every room event, so whether a direct
    write is allowed is one attribute, ``direct_ok``, recomputed whenever one of its
    inputs changes (uvicorn's ``close_sent``/``disconnected`` flags, flow control,
    the handshake, a close frame from the peer) instead of five checks per write."""

    direct_ok = False
    on_shutdown: Callable[[], None] | None = None
    # uvicorn's own flags, turned into inputs of direct_ok; the others are ours.
    close_sent = _DirectInput()
    disconnected = _DirectInput()
    accepted = _DirectInput()
    paused = _DirectInput()
    peer_closed = _DirectInput()

    def _recompute(self) -> None:
        self.direct_ok = self.accepted and not (self.paused or self.peer_closed
                                                or self.close_sent or self.disconnected)

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = False

    def handle_close(self, event: Any) -> None:
        self.peer_closed = True  # no data frame may follow our echo of the close
        super().handle_close(event)

    async def run_asgi(self) -> None:
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[DIRECT_EXTENSION] = self.write_frame
        extensions[SHUTDOWN_EXTENSION] = self._register_shutdown
        await super().run_asgi()

    def _register_shutdown(self, callback: Callable[[], None]) -> None:
        self.on_shutdown = callback

    def shutdown(self) -> None:
        """uvicorn is stopping: let the chat connection close itself (flush, then
        1012); uvicorn waits for the socket and force-closes it after its graceful
        timeout."""
        callback, self.on_shutdown = self.on_shutdown, None
        if callback is None or self.close_sent or self.disconnected:
            super().shutdown()
            return
        self.stop_keepalive()
        callback()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake request and response are never read again; an idle
            # server holds many sockets, so let them go (~1.5 KB each).
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            self.accepted = self.conn.state is State.OPEN

    def write_frame(self, frame: OutFrame) -> bool:
        """Write now if the connection is open and its buffer below the high-water
        mark; False means the caller must queue the frame instead."""
        if not self.direct_ok:
            return False
        wire = frame.wire
        if wire is None:
            wire = frame.wire = text_frame(frame.text.encode())
        self.transport.write(wire)
        return True
