"""Every frame the server sends, built here and nowhere else.

Each function returns the frame as a plain dict ready for ``codec.encode``; its
parameters name the fields docs/protocol.md lists for that ``type``. Pure: no I/O."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

Frame = dict[str, Any]
PresenceStatus = Literal["online", "offline", "joined", "left"]
ConfirmationStatus = Literal["delivered", "read"]


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def utc_now() -> str:
    """Now as ISO 8601 UTC with milliseconds and ``Z``. Every streamed AI chunk carries
    one, so the date and time of day are formatted once per second, not per call."""
    now = time.time()
    whole = int(now)
    if _second[0] != whole:
        _second[0], _second[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}Z"


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_timestamp(seconds: float) -> str:
    return iso(datetime.fromtimestamp(seconds, UTC))


def event(
    kind: str, data: dict[str, Any], room_id: str | None = None, seq: int | None = None
) -> Frame:
    """The common shape: ``type``, ``data`` and, for room frames, ``room_id``/``seq``."""
    out: Frame = {"type": kind, "data": data}
    if room_id is not None:
        out["room_id"] = room_id
    if seq is not None:
        out["seq"] = seq
    return out


def error(
    code: str, message: str, *, message_id: str | None = None, details: Any = None, **extra: Any
) -> Frame:
    data: dict[str, Any] = {"error": message, "code": code}
    if message_id is not None:
        data["message_id"] = message_id
    if details is not None:
        data["details"] = details
    data.update({k: v for k, v in extra.items() if v is not None})
    return {"type": "error", "data": data}


# ---- answers to one connection ---------------------------------------------------


def connect(connection_id: str, user_id: int, username: str) -> Frame:
    return event(
        "connect",
        {
            "connection_id": connection_id,
            "status": "connected",
            "server_time": utc_now(),
            "user_id": user_id,
            "username": username,
        },
    )


def pong() -> Frame:
    return event("pong", {"server_time": utc_now()})


def heartbeat() -> Frame:
    """The guide's ``system`` heartbeat."""
    return event("system", {"heartbeat": True, "server_time": utc_now()})


def joined_room(
    room_id: str, room_name: str, room_type: str, participants: list[str], members: list[str]
) -> Frame:
    return event(
        "join_room",
        {
            "room_id": room_id,
            "room_name": room_name,
            "room_type": room_type,
            "participants": participants,
            "members": members,
            "joined_at": utc_now(),
        },
        room_id,
    )


def left_room(room_id: str) -> Frame:
    return event("leave_room", {"room_id": room_id, "left_at": utc_now()}, room_id)


def room_deleted(room_id: str) -> Frame:
    return event("room_deleted", {"room_id": room_id}, room_id)


def synced(rooms: dict[str, int]) -> Frame:
    return event("sync", {"rooms": rooms, "complete": True})


def token_refreshed(expires_at: float) -> Frame:
    return event("refresh_token", {"expires_at": iso_from_timestamp(expires_at)})


def room_confirmation(
    message_id: str | None,
    server_message_id: int,
    room_id: str,
    seq: int,
    status: ConfirmationStatus,
    **extra: Any,
) -> Frame:
    """A room chat was stored (``delivered`` to the sender, with ``queued_for``), or
    reached / was read by ``recipient``."""
    data: dict[str, Any] = {
        "message_id": message_id,
        "server_message_id": server_message_id,
        "room_id": room_id,
        "seq": seq,
        "status": status,
        "timestamp": utc_now(),
    }
    data.update(extra)
    return event("delivery_confirmation", data, room_id)


def unchanged_confirmation(message_id: str | None, room_id: str) -> Frame:
    """An edit, delete or reaction that changed nothing: nothing was stored."""
    return event(
        "delivery_confirmation",
        {
            "message_id": message_id,
            "room_id": room_id,
            "status": "delivered",
            "unchanged": True,
            "timestamp": utc_now(),
        },
        room_id,
    )


def mention(room_id: str, message_id: int, seq: int, by: str) -> Frame:
    """To the connections of a member named ``@username`` in a stored chat."""
    return event("mention", {"message_id": message_id, "seq": seq, "by": by}, room_id)


def ai_confirmation(
    message_id: str | None, server_message_id: int, conversation_id: int, *, duplicate: bool = False
) -> Frame:
    """A roomless chat to the AI was stored as a conversation turn."""
    data: dict[str, Any] = {
        "message_id": message_id,
        "server_message_id": server_message_id,
        "conversation_id": conversation_id,
        "status": "delivered",
    }
    if duplicate:
        data["duplicate"] = True
    data["timestamp"] = utc_now()
    return event("delivery_confirmation", data)


def file_upload(reply: dict[str, Any], message_id: str | None = None) -> Frame:
    return event(
        "file_upload", {**reply, "message_id": message_id} if message_id is not None else reply
    )


# ---- room broadcasts ----------------------------------------------------------------


def presence_data(room_id: str, username: str, status: PresenceStatus) -> dict[str, Any]:
    return {"room_id": room_id, "username": username, "status": status}


def presence(room_id: str, username: str, status: PresenceStatus) -> Frame:
    return event("presence", presence_data(room_id, username, status), room_id)


def typing(room_id: str, username: str, user_id: int | str, is_typing: bool) -> Frame:
    return event(
        "typing",
        {"user_id": user_id, "username": username, "is_typing": is_typing, "room_id": room_id},
        room_id,
    )


def stored(kind: str, data: dict[str, Any], room_id: str, seq: int) -> Frame:
    """A stored room event, the same live and replayed."""
    return event(kind, data, room_id, seq)


# ---- AI replies -------------------------------------------------------------------


def ai_chunk(content: str, conversation_id: int, room_id: str | None) -> Frame:
    return event(
        "chat",
        {
            "role": "assistant",
            "content": content,
            "streaming": True,
            "conversation_id": conversation_id,
            "timestamp": utc_now(),
        },
        room_id,
    )


def ai_done(summary: dict[str, Any], room_id: str | None = None) -> Frame:
    """A reply's completion (``done: true``) for a roomless conversation."""
    return event("chat", summary, room_id)
