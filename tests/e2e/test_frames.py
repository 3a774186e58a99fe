"""Every incoming frame is validated; every bad one gets a clear error and the
connection survives it."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support import Namer, Server, StartServer

BAD_FRAMES = [
    ("{not json", "INVALID_JSON", None),
    ("[1, 2, 3]", "INVALID_MESSAGE", ""),
    ('{"data": {}}', "INVALID_MESSAGE", "type"),
    ('{"type": "teleport", "data": {}}', "UNKNOWN_TYPE", None),
    ('{"type": "chat", "data": {}}', "INVALID_MESSAGE", "data.message"),
    (
        '{"type": "chat", "data": {"message": "hi", "temperature": 2.5}}',
        "INVALID_MESSAGE",
        "data.temperature",
    ),
    (
        '{"type": "chat", "data": {"message": "hi", "max_tokens": 0}}',
        "INVALID_MESSAGE",
        "data.max_tokens",
    ),
    ('{"type": "chat", "data": {"message": "hi", "extra": 1}}', "INVALID_MESSAGE", "data.extra"),
    ('{"type": "join_room", "data": {"room_id": "bad room!"}}', "INVALID_MESSAGE", "room_id"),
    (
        '{"type": "join_room", "data": {"room_id": "r", "room_type": "secret"}}',
        "INVALID_MESSAGE",
        "data.room_type",
    ),
    ('{"type": "typing", "data": {"is_typing": true}}', "INVALID_MESSAGE", "room_id"),
    (
        '{"type": "read_receipt", "room_id": "r", "data": {"seq": -1}}',
        "INVALID_MESSAGE",
        "data.seq",
    ),
    (
        '{"type": "file_upload", "data": {"upload_type": "explode"}}',
        "INVALID_MESSAGE",
        "data.upload_type",
    ),
    ('{"type": "sync", "data": {"rooms": {"r": "x"}}}', "INVALID_MESSAGE", "data.rooms.r"),
]


@pytest.mark.parametrize(("frame", "code", "field"), BAD_FRAMES)
async def test_bad_frame_gets_named_error_and_connection_survives(
    server: Server, name: Namer, frame: str, code: str, field: str | None
) -> None:
    client = await server.connect(await server.user(name()))
    await client.send(frame)
    error = await client.expect("error")
    assert error["data"]["code"] == code
    assert error["data"]["error"]
    if field is not None:
        assert field in [d["field"] for d in error["data"]["details"]]
    await client.send({"type": "ping"})
    assert (await client.expect("pong"))["data"]["server_time"].endswith("Z")


async def test_error_echoes_the_client_message_id(server: Server, name: Namer) -> None:
    client = await server.connect(await server.user(name()))
    await client.send(
        {
            "type": "chat",
            "room_id": "nowhere-" + name(),
            "message_id": "m-42",
            "data": {"message": "hello", "ai": False},
        }
    )
    error = await client.expect("error")
    assert error["data"]["message_id"] == "m-42"
    assert error["data"]["code"] in ("NOT_FOUND", "NOT_IN_ROOM")


async def test_ping_gets_pong_with_server_time(server: Server, name: Namer) -> None:
    client = await server.connect(await server.user(name()))
    await client.send({"type": "ping"})
    pong = await client.expect("pong")
    assert pong["data"]["server_time"].endswith("Z")


async def test_rate_limit_rejects_excess_with_honest_retry_after(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WS_RATE_LIMIT_REQUESTS=5, WS_RATE_LIMIT_WINDOW=2)
    client = await srv.connect(await srv.user(name()))
    started = time.monotonic()
    for _ in range(5):
        await client.send({"type": "ping"})
    for _ in range(5):
        await client.expect("pong")
    await client.send({"type": "ping", "message_id": "over"})
    error = await client.expect("error")
    assert error["data"]["code"] == "RATE_LIMIT"
    assert error["data"]["message_id"] == "over"
    retry_after = error["data"]["retry_after"]
    assert isinstance(retry_after, int) and 1 <= retry_after <= 2
    assert not client.pending("pong")  # the excess frame was not processed
    # Waiting retry_after seconds (from the rejection) lets the next frame through.
    await asyncio.sleep(max(0.0, started + 2 - time.monotonic()) + 0.05)
    await client.send({"type": "ping"})
    assert (await client.expect("pong"))["type"] == "pong"


async def test_rejected_frames_do_not_count_towards_the_window(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WS_RATE_LIMIT_REQUESTS=3, WS_RATE_LIMIT_WINDOW=2)
    client = await srv.connect(await srv.user(name()))
    started = time.monotonic()
    for _ in range(3):
        await client.send({"type": "ping"})
    for _ in range(3):
        await client.expect("pong")
    for _ in range(10):  # hammering while limited must not extend the wait
        await client.send({"type": "ping"})
    for _ in range(10):
        assert (await client.expect("error"))["data"]["code"] == "RATE_LIMIT"
    await asyncio.sleep(max(0.0, started + 2 - time.monotonic()) + 0.05)
    await client.send({"type": "ping", "message_id": "after-wait"})
    answer = await client.expect(where=lambda f: f["type"] in ("pong", "error"))
    assert answer["type"] == "pong", answer


async def test_garbage_frames_count_towards_the_rate_limit(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(WS_RATE_LIMIT_REQUESTS=2, WS_RATE_LIMIT_WINDOW=60)
    client = await srv.connect(await srv.user(name()))
    for _ in range(3):
        await client.send("{garbage")
    codes = [(await client.expect("error"))["data"]["code"] for _ in range(3)]
    assert codes == ["INVALID_JSON", "INVALID_JSON", "RATE_LIMIT"]
