"""What travels on broker channels: a small routing header, a newline, the frame.

The frame is encoded once by the publisher and handed as the same text to every
local recipient (no per-recipient fields in a broadcast event)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

STORED = "s"  # room event with a seq
EPHEMERAL = "e"  # typing, presence online/offline
CHUNK = "c"  # AI stream piece
DIRECT = "d"  # a frame for one user's connections (receipts)
CONTROL = "x"  # membership changes: subscribe / unsubscribe / deleted


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: str
    text: str
    room_id: str | None = None
    seq: int | None = None  # a stored event's seq; 0 on an AI reply's first chunk
    exclude: str | None = None  # username that must not get the frame
    key: Any = None  # AI reply of a chunk or of a stored completion; control's arguments

    def pack(self) -> bytes:
        header = {
            "k": self.kind,
            "r": self.room_id,
            "q": self.seq,
            "x": self.exclude,
            "y": self.key,
        }
        return orjson.dumps(header) + b"\n" + self.text.encode()

    @classmethod
    def unpack(cls, payload: bytes) -> Envelope:
        head, _, body = payload.partition(b"\n")
        h = orjson.loads(head)
        return cls(h["k"], body.decode(), h.get("r"), h.get("q"), h.get("x"), h.get("y"))


ROOM = "room"  # channel scopes: room:<room id>, user:<username>
USER = "user"


def room_channel(room_id: str) -> str:
    return f"{ROOM}:{room_id}"


def user_channel(username: str) -> str:
    return f"{USER}:{username}"


def parse_channel(channel: str) -> tuple[str, str]:
    """(scope, name) of a channel made by ``room_channel`` or ``user_channel``."""
    scope, _, name = channel.partition(":")
    return scope, name
