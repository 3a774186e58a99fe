from __future__ import annotations

from typing import Any

from chinwag.client import ChatClient
from tests.support import Server, User


async def joined(
    srv: Server, user: User, room: str, room_type: str | None = None, **query: Any
) -> ChatClient:
    """Connect ``user`` with the room in the query and wait for the confirmation."""
    if room_type:
        query["room_type"] = room_type
    client = await srv.connect(user, room_id=room, **query)
    await client.expect("join_room")
    return client


def chat(room: str, text: str, message_id: str | None = None, **data: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "chat",
        "room_id": room,
        "data": {"message": text, "ai": False, **data},
    }
    if message_id is not None:
        frame["message_id"] = message_id
    return frame


def is_chat_from(username: str):  # type: ignore[no-untyped-def]
    return lambda f: f["data"].get("username") == username
