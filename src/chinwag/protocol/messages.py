"""Typed models of every client → server frame (one per ``type``).

Frames are parsed once, at the edge, by ``codec.decode``; nothing untyped gets
past it. ``room_id`` is accepted at the top level or inside ``data`` for every
type and is normalised to the top level (docs/protocol.md §2.1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

RoomId = Annotated[
    # 1-64 name characters; ``@<username>`` names a personal stream (docs/protocol.md §3.3a).
    str, StringConstraints(min_length=1, max_length=65, pattern=r"^@?[A-Za-z0-9_.:-]{1,64}$")
]
RoomType = Literal["private", "shared", "group"]
HistoryVisibility = Literal["joined", "shared"]
ClientMessageId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
#: The database's integer range (BIGINT): every integer that reaches a query is
#: bounded by it, so an out-of-range number is INVALID_MESSAGE, never a driver error.
DB_INT_MAX = 2**63 - 1
DbId = Annotated[int, Field(ge=1, le=DB_INT_MAX)]  # a row id the server assigned
DbCount = Annotated[int, Field(ge=0, le=DB_INT_MAX)]  # a seq, a size, an index


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClientFrame(_Frozen):
    room_id: RoomId | None = None
    message_id: ClientMessageId | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        if isinstance(raw.get("message_id"), int) and not isinstance(raw["message_id"], bool):
            raw["message_id"] = str(raw["message_id"])
        data = raw.get("data")
        if isinstance(data, dict) and "room_id" in data:
            data = dict(data)
            inner = data.pop("room_id")
            outer = raw.get("room_id")
            if outer is not None and inner is not None and outer != inner:
                raise ValueError("room_id differs between the frame and data")
            if outer is None:
                raw["room_id"] = inner
            raw["data"] = data
        if raw.get("data") is None and "data" in cls.model_fields:
            annotation = cls.model_fields["data"]
            if not annotation.is_required():
                raw.pop("data", None)
        return raw


# ---- data payloads ---------------------------------------------------------


class Empty(_Frozen):
    pass


MessageText = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
ServerMessageId = Annotated[int, Field(ge=1)]
AiText = MessageText


class AiOptions(_Frozen):
    """How an AI reply is to be written (chat, regenerate, edit)."""

    model_preference: Annotated[str, StringConstraints(max_length=128)] | None = None
    system_prompt: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class ChatData(AiOptions):
    message: AiText
    conversation_id: DbId | None = None
    ai: bool = True
    reply_to: ServerMessageId | None = None  # a message of the same room


class EditMessageData(_Frozen):
    message_id: ServerMessageId
    content: MessageText


class DeleteMessageData(_Frozen):
    message_id: ServerMessageId


class ReactData(_Frozen):
    message_id: ServerMessageId
    # An emoji (a ZWJ sequence is one) or a :short_code:; no spaces.
    emoji: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^\S+$")]
    on: bool = True


class RegenerateData(AiOptions):
    conversation_id: DbId


class EditData(AiOptions):
    conversation_id: DbId
    turn_id: DbId
    message: AiText


class JoinRoomData(_Frozen):
    room_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    room_type: RoomType | None = None
    history_visibility: HistoryVisibility | None = None  # used only when creating


class TypingData(_Frozen):
    is_typing: bool


class ReadReceiptData(_Frozen):
    seq: DbCount


class SyncData(_Frozen):
    rooms: dict[RoomId, DbCount] = Field(max_length=1000)


class CancelData(_Frozen):
    conversation_id: DbId


class RefreshTokenData(_Frozen):
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class UploadInit(_Frozen):
    upload_type: Literal["init"]
    file_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    file_size: DbCount
    mime_type: Annotated[str, StringConstraints(max_length=255)] | None = None


class UploadChunk(_Frozen):
    upload_type: Literal["chunk"]
    file_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    chunk_index: DbCount
    total_chunks: Annotated[int, Field(ge=1, le=DB_INT_MAX)] | None = None
    chunk_data: str


class UploadFinalize(_Frozen):
    upload_type: Literal["finalize"]
    file_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    checksum: Annotated[str, StringConstraints(pattern=r"^(sha256:)?[0-9a-fA-F]{64}$")]

    @field_validator("checksum")
    @classmethod
    def _bare_hex(cls, v: str) -> str:
        return v.removeprefix("sha256:").lower()


class UploadStatus(_Frozen):
    upload_type: Literal["status"]
    file_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


UploadData = Annotated[
    UploadInit | UploadChunk | UploadFinalize | UploadStatus, Field(discriminator="upload_type")
]


# ---- frames ----------------------------------------------------------------


class Ping(ClientFrame):
    type: Literal["ping"]
    data: dict[str, Any] | None = None


class Chat(ClientFrame):
    type: Literal["chat"]
    data: ChatData


class JoinRoom(ClientFrame):
    type: Literal["join_room"]
    data: JoinRoomData = JoinRoomData()


class LeaveRoom(ClientFrame):
    type: Literal["leave_room"]
    data: Empty = Empty()


class DeleteRoom(ClientFrame):
    type: Literal["delete_room"]
    data: Empty = Empty()


class Typing(ClientFrame):
    type: Literal["typing"]
    data: TypingData


class ReadReceipt(ClientFrame):
    type: Literal["read_receipt"]
    data: ReadReceiptData


class Sync(ClientFrame):
    type: Literal["sync"]
    data: SyncData


class Cancel(ClientFrame):
    type: Literal["cancel"]
    data: CancelData


class Regenerate(ClientFrame):
    type: Literal["regenerate"]
    data: RegenerateData


class Edit(ClientFrame):
    type: Literal["edit"]
    data: EditData


class RefreshToken(ClientFrame):
    type: Literal["refresh_token"]
    data: RefreshTokenData


class FileUpload(ClientFrame):
    type: Literal["file_upload"]
    data: UploadData


class EditMessage(ClientFrame):
    type: Literal["edit_message"]
    data: EditMessageData


class DeleteMessage(ClientFrame):
    type: Literal["delete_message"]
    data: DeleteMessageData


class React(ClientFrame):
    type: Literal["react"]
    data: ReactData


ClientMessage = Annotated[
    Ping
    | Chat
    | JoinRoom
    | LeaveRoom
    | DeleteRoom
    | Typing
    | ReadReceipt
    | Sync
    | Cancel
    | RefreshToken
    | FileUpload
    | EditMessage
    | DeleteMessage
    | React
    | Regenerate
    | Edit,
    Field(discriminator="type"),
]

#: Types that act on one room and so need a room_id.
MESSAGE_OPS = frozenset({"edit_message", "delete_message", "react"})
ROOM_TYPES = frozenset(
    {"join_room", "leave_room", "delete_room", "typing", "read_receipt"} | MESSAGE_OPS
)
CLIENT_TYPES = frozenset(
    {
        "ping",
        "chat",
        "join_room",
        "leave_room",
        "delete_room",
        "typing",
        "read_receipt",
        "sync",
        "cancel",
        "refresh_token",
        "file_upload",
        "regenerate",
        "edit",
    }
    | MESSAGE_OPS
)
