"""Personal streams: each user's own room, ``@<username>``, for roomless AI replies.

A roomless AI completion is stored as an event of its requester's personal stream,
so it has a seq like any room event and reaches them by the offline queue and
``sync``. The stream is a room of type ``personal`` whose only member is its owner,
created on first use; nobody else may join, read or be added to it, and its owner
cannot leave it (docs/protocol.md §3.3)."""

from __future__ import annotations

from chinwag.core.hub import Hub
from chinwag.protocol.errors import Conflict
from chinwag.store.base import Store

PERSONAL = "personal"
PREFIX = "@"


def personal_room(username: str) -> str:
    return PREFIX + username


def is_personal(room_id: str) -> bool:
    return room_id.startswith(PREFIX)


async def ensure_personal(store: Store, hub: Hub, username: str) -> str:
    """The user's personal stream, created (and subscribed to by their open
    connections, on every process) the first time it is needed."""
    room_id = personal_room(username)
    if await store.rooms.get(room_id) is not None:
        return room_id
    try:
        await store.rooms.create(room_id, room_id, PERSONAL, username, history_visibility="shared")
    except Conflict:  # created concurrently by another reply
        return room_id
    await hub.control_user(username, "subscribe", room_id, 0)
    return room_id
