"""What the SDK hands to the application: plain frozen dataclasses built from the
server's frames. Unknown fields are kept in ``data``; nothing is dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Frame = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One server event. Stored room events (chat, AI completions, shared files,
    membership changes, edits …) have a ``seq``; ephemeral ones (typing, presence
    online/offline, AI chunks, receipts) have ``seq=None``."""

    type: str
    data: dict[str, Any]
    room_id: str | None = None
    seq: int | None = None

    @classmethod
    def from_frame(cls, frame: Frame) -> Event:
        data = frame.get("data")
        return cls(str(frame.get("type")), data if isinstance(data, dict) else {},
                   frame.get("room_id"), frame.get("seq"))

    @property
    def stored(self) -> bool:
        return self.seq is not None and self.room_id is not None

    @property
    def username(self) -> str | None:
        return self.data.get("username")

    @property
    def content(self) -> str:
        return str(self.data.get("content") or "")


@dataclass(frozen=True)
class Confirmation:
    """The server's ``delivery_confirmation`` for a message the application sent.
    ``duplicate`` is true when the message had already been stored (a resend)."""

    message_id: str
    server_message_id: int
    room_id: str | None
    seq: int | None
    status: str
    queued_for: tuple[str, ...] = ()
    duplicate: bool = False
    conversation_id: int | None = None
    timestamp: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Confirmation:
        return cls(str(data.get("message_id")), int(data["server_message_id"]),
                   data.get("room_id"), data.get("seq"), str(data.get("status")),
                   tuple(data.get("queued_for") or ()), bool(data.get("duplicate")),
                   data.get("conversation_id"), data.get("timestamp"))


@dataclass(frozen=True)
class Reply:
    """An AI reply, complete. ``seq`` is set when it was stored in a room."""

    text: str
    conversation_id: int
    tokens_used: int
    model_used: str
    cost_usd: float
    room_id: str | None = None
    seq: int | None = None
    cancelled: bool = False
    model_fallback: bool = False


@dataclass(frozen=True)
class UploadedFile:
    """A finished upload: fetch its bytes from ``url`` with an access token."""

    file_id: str
    url: str
    checksum: str
    file_name: str
    file_size: int
    mime_type: str
    room_id: str | None = None
    seq: int | None = None

    @classmethod
    def from_frame(cls, frame: Frame) -> UploadedFile:
        d = frame["data"]
        return cls(d["file_id"], d["url"], d["checksum"], d["file_name"], int(d["file_size"]),
                   d.get("mime_type", ""), frame.get("room_id"), frame.get("seq"))


@dataclass(frozen=True)
class Room:
    """The answer to ``join``: who belongs to the room and who is connected now."""

    room_id: str
    room_name: str
    room_type: str
    members: tuple[str, ...] = ()
    participants: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Room:
        return cls(data["room_id"], data.get("room_name", data["room_id"]),
                   data.get("room_type", ""), tuple(data.get("members") or ()),
                   tuple(data.get("participants") or ()), data)
