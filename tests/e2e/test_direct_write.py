"""The direct-write fast path against the installed uvicorn: it reaches into uvicorn's
sansio WebSocket protocol, so an upgrade that moves those internals must fail here,
loudly, instead of silently turning every broadcast into a lost frame or a slow one.
A real listening socket, the real protocol class, a real websockets client."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.asyncio.client import connect
from websockets.http11 import Request

from chinwag.core.outbox import OutFrame
from chinwag.server.direct_write import (
    DIRECT_EXTENSION,
    MAX_WRITE_BYTES,
    RELIED_ON_ATTRIBUTES,
    RELIED_ON_METHODS,
    DirectWebSocketProtocol,
)


class Endpoint:
    """An ASGI app that accepts, then hands its protocol object to the test."""

    def __init__(self) -> None:
        self.protocol: asyncio.Future[DirectWebSocketProtocol] = asyncio.Future()
        self.accepted_write: bool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()
        await send({"type": "websocket.accept"})
        write = scope["extensions"][DIRECT_EXTENSION]
        self.accepted_write = write(OutFrame("written directly"))
        self.protocol.set_result(write.__self__)
        while (await receive())["type"] != "websocket.disconnect":
            pass


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Endpoint, int]]:
    app = Endpoint()
    config = uvicorn.Config(
        app,
        ws=DirectWebSocketProtocol,
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        lifespan="off",
        log_config=None,
    )
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: DirectWebSocketProtocol(config, state, {}), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield app, port
    finally:
        server.close()
        for conn in list(state.connections):
            conn.transport.abort()
        await server.wait_closed()


async def test_uvicorn_still_has_every_internal_the_direct_path_uses(
    endpoint: tuple[Endpoint, int],
) -> None:
    app, port = endpoint
    async with connect(f"ws://127.0.0.1:{port}/") as ws:
        protocol = await asyncio.wait_for(app.protocol, 5)
        # Set by uvicorn itself (close_sent and disconnected land in our descriptors'
        # slots), and defined by uvicorn's class, not only by ours.
        own = vars(protocol)
        missing = [n for n in RELIED_ON_ATTRIBUTES if n not in own and f"_{n}" not in own]
        missing += [n for n in RELIED_ON_METHODS if not hasattr(WebSocketsSansIOProtocol, n)]
        assert not missing, (
            f"uvicorn {uvicorn.__version__} no longer has {missing} on its sansio WebSocket "
            "protocol: server/direct_write.py relies on them (fix it before upgrading)"
        )
        assert protocol.conn.state.name == "OPEN"
        await ws.close()


async def test_a_direct_write_reaches_the_client_as_one_text_frame(
    endpoint: tuple[Endpoint, int],
) -> None:
    app, port = endpoint
    async with connect(f"ws://127.0.0.1:{port}/") as ws:
        assert await asyncio.wait_for(ws.recv(), 5) == "written directly"
        assert app.accepted_write is True
        protocol = await app.protocol
        assert protocol.request is None and protocol.response is None  # freed at accept


async def test_flow_control_and_a_peer_close_turn_direct_writes_off(
    endpoint: tuple[Endpoint, int],
) -> None:
    app, port = endpoint
    async with connect(f"ws://127.0.0.1:{port}/") as ws:
        await asyncio.wait_for(ws.recv(), 5)
        protocol = await app.protocol
        assert protocol.direct_ok
        protocol.pause_writing()  # what asyncio calls above the high-water mark
        assert not protocol.direct_ok and not protocol.write_frame(OutFrame("x"))
        protocol.resume_writing()
        assert protocol.direct_ok
        await ws.close()
    async with asyncio.timeout(5):
        while protocol.direct_ok:  # the peer's close frame was handled
            await asyncio.sleep(0.01)
    assert not protocol.write_frame(OutFrame("after close"))


async def test_frames_of_one_tick_after_the_first_go_out_together_in_order(
    endpoint: tuple[Endpoint, int],
) -> None:
    app, port = endpoint
    async with connect(f"ws://127.0.0.1:{port}/") as ws:
        assert await asyncio.wait_for(ws.recv(), 5) == "written directly"
        protocol = await app.protocol
        await asyncio.sleep(0)  # a new tick: nothing gathered
        assert protocol.gathered is None
        assert protocol.write_frame(OutFrame("first"))
        assert protocol.gathered == []  # the tick's first frame went out at once
        for i in range(5):
            assert protocol.write_frame(OutFrame(f"then {i}"))
        waiting = protocol.gathered  # the rest wait for the end of the tick
        assert waiting is not None and len(waiting) == 5
        got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(6)]
        assert got == ["first"] + [f"then {i}" for i in range(5)]
        assert protocol.gathered is None


async def test_a_large_tick_is_written_in_bounded_pieces(endpoint: tuple[Endpoint, int]) -> None:
    app, port = endpoint
    async with connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
        await asyncio.wait_for(ws.recv(), 5)
        protocol = await app.protocol
        await asyncio.sleep(0)
        big = "y" * (MAX_WRITE_BYTES // 4)
        for i in range(12):
            assert protocol.write_frame(OutFrame(f"{i}:{big}"))
            assert protocol.gathered_bytes < MAX_WRITE_BYTES
        got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(12)]
        assert [g.split(":", 1)[0] for g in got if isinstance(g, str)] == [
            str(i) for i in range(12)
        ]


async def test_the_handshake_request_with_its_token_is_emptied_at_accept(
    endpoint: tuple[Endpoint, int],
) -> None:
    app, port = endpoint
    url = f"ws://127.0.0.1:{port}/ws?token=secret-token-123"
    async with connect(url, additional_headers={"X-Seen": "header-value-456"}) as ws:
        await asyncio.wait_for(ws.recv(), 5)
        await app.protocol
        # websockets' parser keeps the server's request object for the connection's
        # life; the client keeps its own copy (ws.request)
        kept = [o for o in gc.get_objects() if type(o) is Request and o is not ws.request]
        assert not [r for r in kept if "secret-token-123" in r.path]
        assert not [r for r in kept if "header-value-456" in str(r.headers)]
        await ws.close()


async def test_a_send_waiting_on_flow_control_goes_out_when_writing_resumes(
    endpoint: tuple[Endpoint, int],
) -> None:
    app, port = endpoint
    async with connect(f"ws://127.0.0.1:{port}/") as ws:
        await asyncio.wait_for(ws.recv(), 5)
        protocol = await app.protocol
        protocol.pause_writing()
        send = asyncio.create_task(protocol.send({"type": "websocket.send", "text": "later"}))
        await asyncio.sleep(0)
        assert not send.done()
        protocol.resume_writing()
        await asyncio.wait_for(send, 5)
        assert await asyncio.wait_for(ws.recv(), 5) == "later"
