"""Decode client frames into typed messages; encode server frames (built by
``frames``) to JSON text.

Pure: no I/O, no event loop. Every rejection is a ChatError with the code
docs/protocol.md §6 names, so the endpoint can answer it and keep the connection."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from chinwag.protocol.errors import ChatError, InvalidJson, InvalidMessage, UnknownType
from chinwag.protocol.frames import error as error_event
from chinwag.protocol.frames import event, iso, iso_from_timestamp, utc_now
from chinwag.protocol.messages import CLIENT_TYPES, ROOM_TYPES, ClientMessage

# The frame builders live in ``frames``; these names stay importable from here.
__all__ = ["decode", "encode", "error_event", "event", "iso", "iso_from_timestamp", "utc_now"]

_UPLOAD_TAGS = frozenset({"init", "chunk", "finalize", "status"})
_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


def decode(frame: str | bytes) -> ClientMessage:
    """Parse one client frame. Raises InvalidJson, InvalidMessage or UnknownType."""
    try:
        raw = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"frame is not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise InvalidMessage("frame must be a JSON object", details=[_detail("", "not an object")])
    try:
        return _validate(raw)
    except ChatError as exc:
        # Echo the client's id even when the rest of the frame is wrong.
        mid = raw.get("message_id")
        if isinstance(mid, str | int) and not isinstance(mid, bool):
            exc.message_id = str(mid)[:128]
        raise


def _validate(raw: dict[str, Any]) -> ClientMessage:
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise InvalidMessage("field 'type' is required", details=[_detail("type", "missing")])
    if kind not in CLIENT_TYPES:
        raise UnknownType(f"unknown message type '{kind[:64]}'", details={"type": kind[:64]})
    try:
        message = _adapter.validate_python(raw)
    except ValidationError as exc:
        details = [_detail(_field(err["loc"], err), err["msg"]) for err in exc.errors()]
        first = details[0]
        raise InvalidMessage(
            f"invalid field '{first['field']}': {first['error']}", details=details
        ) from None
    if kind in ROOM_TYPES and message.room_id is None:
        raise InvalidMessage("field 'room_id' is required", details=[_detail("room_id", "missing")])
    return message


def _field(loc: tuple[int | str, ...], err: Any = None) -> str:
    # Drop the discriminator tags pydantic inserts ("chat", "init"…) so the path
    # names the field as the client wrote it.
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in CLIENT_TYPES:
        parts = parts[1:]
    if len(parts) > 2 and parts[0] == "data" and parts[1] in _UPLOAD_TAGS:
        parts = [parts[0], *parts[2:]]
    if err is not None and err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        parts.append(str(err["ctx"]["discriminator"]).strip("'"))
    return ".".join(parts)


def _detail(field: str, error: str) -> dict[str, str]:
    return {"field": field, "error": error}


def encode(event: dict[str, Any]) -> str:
    """A server event as the JSON text of one frame."""
    return orjson.dumps(event).decode()


def without_content(text: str) -> str:
    """An encoded AI completion as live listeners get it: ``content`` "", the text
    having come in the chunks."""
    event = orjson.loads(text)
    event["data"]["content"] = ""
    return encode(event)
