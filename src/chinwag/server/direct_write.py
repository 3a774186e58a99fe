"""chinwag's WebSocket protocol class: uvicorn's sansio protocol plus

- the fan-out fast path: a room event is framed once and written synchronously to
  every transport that accepts writes, instead of one ASGI ``send`` per recipient;
- liveness: any bytes from the peer prove it alive (a pong may wait behind the
  peer's own data frames); a peer silent for two heartbeat intervals is closed
  with 4408 (ping timeout) and logged. uvicorn's own pong deadline is off.

It relies on internals of uvicorn's sansio WebSocket protocol (the attributes
``close_sent``, ``disconnected``, ``conn``, ``transport``, ``request``/``response``
and the methods ``handle_close``, ``pause_writing``/``resume_writing``,
``run_asgi``, ``send``); tests/e2e/test_direct_write.py fails loudly when an uvicorn
upgrade changes them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from chinwag.core.outbox import OutFrame
from chinwag.protocol.codes import CloseCode
from chinwag.server.lean_sync import Flag, ReceiveQueue

log = logging.getLogger(__name__)

#: The internals of WebSocketsSansIOProtocol this module reads, writes or overrides:
#: instance attributes uvicorn sets (by the time a connection is accepted) ...
RELIED_ON_ATTRIBUTES = (
    "queue",
    "writable",
    "close_sent",
    "disconnected",
    "conn",
    "transport",
    "request",
    "response",
    "scope",
    "loop",
    "ping_interval",
    "ping_timer",
    "client",
)
#: ... and methods of the class.
RELIED_ON_METHODS = (
    "handle_close",
    "pause_writing",
    "resume_writing",
    "run_asgi",
    "send",
    "data_received",
    "send_keepalive_ping",
)

DIRECT_EXTENSION = "chinwag.direct_write"
#: A connection's frames gathered within one loop tick go out in writes of at most
#: about this many bytes.
MAX_WRITE_BYTES = 64 * 1024


class _TickBatches:
    """Per event loop, the connections that wrote in this tick, and one callback per
    tick (not one per connection) that writes what each gathered after its first frame."""

    def __init__(self) -> None:
        # id(loop) -> (loop, connections): the loop kept to tell a reused id apart
        self.wrote: dict[int, tuple[asyncio.AbstractEventLoop, list[DirectWebSocketProtocol]]] = {}

    def add(self, protocol: DirectWebSocketProtocol) -> None:
        loop = protocol.loop
        entry = self.wrote.get(id(loop))
        if entry is None or entry[0] is not loop:
            entry = self.wrote[id(loop)] = (loop, [])
            loop.call_soon(self.flush, loop)
        entry[1].append(protocol)

    def flush(self, loop: asyncio.AbstractEventLoop) -> None:
        entry = self.wrote.pop(id(loop), None)
        for protocol in entry[1] if entry is not None else ():
            protocol.flush_gathered()


_batches = _TickBatches()


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same roles as uvicorn's asyncio.Queue and asyncio.Event, ~3 KB less
        # per idle connection (lean_sync).
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.writable = Flag(True)  # type: ignore[assignment]

    # uvicorn's own flags, turned into inputs of direct_ok; the others are ours.
    close_sent = _DirectInput()
    disconnected = _DirectInput()
    accepted = _DirectInput()
    paused = _DirectInput()
    peer_closed = _DirectInput()

    def _recompute(self) -> None:
        self.direct_ok = self.accepted and not (
            self.paused or self.peer_closed or self.close_sent or self.disconnected
        )

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = False

    # ---- liveness ------------------------------------------------------------------

    last_heard = 0.0  # loop time of the last bytes from the peer

    def data_received(self, data: bytes) -> None:
        self.last_heard = self.loop.time()
        super().data_received(data)

    def send_keepalive_ping(self) -> None:
        """Every heartbeat interval: drop a peer silent for two, else ping it."""
        interval = self.ping_interval or 0.0
        silent = self.loop.time() - self.last_heard
        if (
            self.last_heard
            and silent >= 2 * interval
            and not (self.close_sent or self.transport.is_closing())
        ):
            self.ping_timer = None
            peer = "{}:{}".format(*self.client) if self.client else "?"
            log.info(
                "closing the WebSocket of %s: nothing heard for %.1f s (ping timeout)", peer, silent
            )
            if self.gathered:
                self.flush_gathered()
            self.conn.fail(CloseCode.PING_TIMEOUT, "ping timeout")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.transport.close()
            return
        super().send_keepalive_ping()

    def handle_close(self, event: Any) -> None:
        self.peer_closed = True  # no data frame may follow our echo of the close
        if self.gathered:
            self.flush_gathered()
        super().handle_close(event)

    async def run_asgi(self) -> None:
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[DIRECT_EXTENSION] = self.write_frame
        await super().run_asgi()

    async def send(self, message: Any) -> None:
        if self.gathered:  # frames written directly this tick go first
            self.flush_gathered()
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake request and response are never read again; an idle
            # server holds many sockets, so let them go (~1.5 KB each). websockets'
            # parser keeps the request alive for the connection's life (a local of
            # its generator), so it is emptied too (its path holds the token).
            if self.request is not None:
                self.request.headers.clear()
                self.request.path = ""
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            self.accepted = self.conn.state is State.OPEN

    # ---- the direct write ------------------------------------------------------------

    #: None: nothing written in this loop tick; else the frames gathered since this
    #: tick's first write (which went out at once), written at the end of the tick.
    gathered: list[bytes] | None = None
    gathered_bytes = 0

    def write_frame(self, frame: OutFrame) -> bool:
        """Write if the connection is open and its buffer below the high-water mark;
        False means the caller must queue the frame instead. The first frame of a
        loop tick is written at once; the ones after it in the same tick are
        gathered and written together when the tick ends (at most MAX_WRITE_BYTES
        a write), one write instead of one per frame."""
        if not self.direct_ok:
            return False
        wire = frame.wire
        if wire is None:
            wire = frame.wire = text_frame(frame.text.encode())
        gathered = self.gathered
        if gathered is None:
            self.transport.write(wire)
            self.gathered = []
            _batches.add(self)
            return True
        gathered.append(wire)
        self.gathered_bytes += len(wire)
        if self.gathered_bytes >= MAX_WRITE_BYTES:
            self._write_gathered(gathered)
            self.gathered = []
        return True

    def flush_gathered(self) -> None:
        """End of the tick: write what was gathered; the next frame goes out at once."""
        gathered, self.gathered = self.gathered, None
        if gathered:
            self._write_gathered(gathered)

    def _write_gathered(self, gathered: list[bytes]) -> None:
        self.gathered_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(gathered[0] if len(gathered) == 1 else b"".join(gathered))
