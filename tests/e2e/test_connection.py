"""The WebSocket endpoint's life cycle: every close code of SPEC §3."""

from __future__ import annotations

import asyncio
import signal
import time

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support import Namer, Server, StartServer


async def test_connect_frame_has_guide_fields_and_user(server: Server, name: Namer) -> None:
    user = await server.user(name())
    client = await server.raw_connect(user)
    frame = await client.expect()
    assert frame["type"] == "connect"
    data = frame["data"]
    assert data["status"] == "connected" and data["connection_id"]
    assert data["server_time"].endswith("Z")
    assert data["username"] == user.username and data["user_id"] == user.user_id


@pytest.mark.parametrize("token", [None, "not-a-jwt", "expired", "access", "forged"])
async def test_bad_token_gets_auth_failed_then_4401(
    server: Server, name: Namer, token: str | None
) -> None:
    user = await server.user(name())
    secret = server.env["JWT_SECRET"]
    claims = {"sub": user.username, "uid": user.user_id, "aud": "chinwag:ws"}
    value = {
        None: None,
        "not-a-jwt": "not-a-jwt",
        "expired": jwt.encode({**claims, "exp": int(time.time()) - 5}, secret, "HS256"),
        "access": user.access_token,
        "forged": jwt.encode({**claims, "exp": int(time.time()) + 60}, "x" * 40, "HS256"),
    }[token]
    client = await server.raw_connect(None, token=value)
    error = await client.expect("error")
    assert error["data"]["code"] == "AUTH_FAILED"
    assert await client.wait_closed() == 4401


async def test_foreign_origin_is_refused_with_403(server: Server, name: Namer) -> None:
    user = await server.user(name())
    url = f"{server.ws_base}/api/v1/ws/ws?token={user.ws_token}"
    with pytest.raises(InvalidStatus) as info:
        await connect(url, origin="http://evil.example")  # type: ignore[arg-type]
    assert info.value.response.status_code == 403


async def test_same_origin_and_listed_origin_are_allowed(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WS_ALLOWED_ORIGINS="https://app.example.com")
    user = await srv.user(name())
    url = f"{srv.ws_base}/api/v1/ws/ws?token={user.ws_token}"
    for origin in (f"http://127.0.0.1:{srv.port}", "https://app.example.com"):
        async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
            assert '"connect"' in str(await asyncio.wait_for(ws.recv(), 5))


async def test_per_user_connection_limit_closes_with_1013(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WEBSOCKET_MAX_CONNECTIONS_PER_USER=2)
    user = await srv.user(name())
    await srv.connect(user)
    await srv.connect(user)
    third = await srv.raw_connect(user)
    error = await third.expect("error")
    assert error["data"]["code"] == "TOO_MANY_CONNECTIONS"
    assert await third.wait_closed() == 1013
    other = await srv.connect(await srv.user(name()))  # someone else still gets in
    assert other.close_code is None


async def test_global_connection_limit_closes_with_1013(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WEBSOCKET_MAX_CONNECTIONS=2)
    await srv.connect(await srv.user(name()))
    await srv.connect(await srv.user(name()))
    third = await srv.raw_connect(await srv.user(name()))
    assert (await third.expect("error"))["data"]["code"] == "TOO_MANY_CONNECTIONS"
    assert await third.wait_closed() == 1013


async def test_oversized_frame_closes_with_1009(start_server: StartServer, name: Namer) -> None:
    srv = await start_server(WS_MAX_MESSAGE_SIZE=4096, MAX_CHUNK_SIZE=1024)
    client = await srv.connect(await srv.user(name()))
    await client.send("x" * 5000)
    assert await client.wait_closed() == 1009


async def test_connection_closes_with_4401_when_token_expires(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WS_TOKEN_EXPIRE_SECONDS=2)
    user = await srv.user(name())
    client = await srv.connect(user)
    error = await client.expect("error", timeout=10)
    assert error["data"]["code"] == "AUTH_FAILED"
    assert await client.wait_closed() == 4401


async def test_refresh_token_extends_the_connection(start_server: StartServer, name: Namer) -> None:
    srv = await start_server(WS_TOKEN_EXPIRE_SECONDS=3)
    user = await srv.user(name())
    first_exp = jwt.decode(user.ws_token, options={"verify_signature": False})["exp"]
    client = await srv.connect(user)

    async def ping_until(moment: float) -> None:
        while time.time() < moment:
            await client.send({"type": "ping"})
            await client.expect("pong")
            await asyncio.sleep(0.2)

    await ping_until(first_exp - 1.5)  # a token issued now outlives the first one
    fresh = (await srv.post("/api/v1/ws/token", user)).json()["token"]
    assert jwt.decode(fresh, options={"verify_signature": False})["exp"] > first_exp
    await client.send({"type": "refresh_token", "data": {"token": fresh}})
    answer = await client.expect("refresh_token")
    assert answer["data"]["expires_at"].endswith("Z")
    await ping_until(first_exp + 0.5)
    assert client.close_code is None


async def test_refresh_with_bad_or_foreign_token_changes_nothing(
    server: Server, name: Namer
) -> None:
    user, other = await server.user(name()), await server.user(name())
    client = await server.connect(user)
    for token in ("garbage", other.ws_token, user.access_token):
        await client.send({"type": "refresh_token", "data": {"token": token}})
        assert (await client.expect("error"))["data"]["code"] == "AUTH_FAILED"
    await client.send({"type": "ping"})
    assert (await client.expect("pong"))["type"] == "pong"


async def test_half_open_handshake_is_dropped(start_server: StartServer) -> None:
    srv = await start_server(WEBSOCKET_HANDSHAKE_TIMEOUT=1)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"GET /api/v1/ws/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
    await writer.drain()
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # the server hung up
    writer.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_or_sigint_closes_every_socket_with_1012_and_exits_0(
    start_server: StartServer, name: Namer, sig: int
) -> None:
    srv = await start_server()
    clients = [await srv.connect(await srv.user(name())) for _ in range(3)]
    assert await srv.stop(sig) == 0
    for client in clients:
        assert await client.wait_closed() == 1012
