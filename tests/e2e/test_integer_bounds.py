"""Every integer a client sends is bounded to the database's range (BIGINT): a number
outside it is the client's mistake (INVALID_MESSAGE / 422), never a driver error
(INTERNAL_ERROR / 500), and the connection goes on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.rooms_helpers import joined
from tests.support import Namer, Server

pytestmark = pytest.mark.storage

TOO_BIG = 2**63


def frames(room: str) -> list[dict[str, Any]]:
    return [
        {"type": "chat", "room_id": room, "data": {"message": "hi", "conversation_id": TOO_BIG}},
        {"type": "chat", "data": {"message": "hi", "conversation_id": TOO_BIG}},
        {"type": "chat", "data": {"message": "hi", "conversation_id": -TOO_BIG - 1}},
        {"type": "cancel", "data": {"conversation_id": TOO_BIG}},
        {"type": "read_receipt", "room_id": room, "data": {"seq": TOO_BIG}},
        {"type": "sync", "data": {"rooms": {room: TOO_BIG}}},
        {
            "type": "file_upload",
            "data": {"upload_type": "init", "file_name": "a.txt", "file_size": TOO_BIG},
        },
        {
            "type": "file_upload",
            "data": {
                "upload_type": "chunk",
                "file_id": "x",
                "chunk_index": TOO_BIG,
                "chunk_data": "",
            },
        },
    ]


async def test_an_integer_beyond_bigint_is_invalid_message_over_the_socket(
    server: Server, name: Namer
) -> None:
    room = name("room")
    client = await joined(server, await server.user(name()), room)
    for i, frame in enumerate(frames(room)):
        await client.send({**frame, "message_id": f"big-{i}"})
        error = await client.expect("error")
        assert error["data"]["message_id"] == f"big-{i}"
        assert error["data"]["code"] == "INVALID_MESSAGE", (frame, error)
    await client.send({"type": "ping"})
    await client.expect("pong")
    assert "Traceback" not in server.log


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/conversations/{TOO_BIG}/messages",
        "/api/v1/conversations/0/messages",
        "/api/v1/ws/rooms/{room}/messages?before_seq=" + str(TOO_BIG),
    ],
)
async def test_an_integer_beyond_bigint_is_422_over_http(
    server: Server, name: Namer, path: str
) -> None:
    user = await server.user(name())
    room = name("room")
    assert (await server.post("/api/v1/ws/rooms", user, json={"room_id": room})).status_code == 201
    r = await server.get(path.format(room=room), user)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "INVALID_MESSAGE"
