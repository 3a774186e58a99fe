"""Decode client frames into typed messages; encode server events to JSON text.

Pure: no I/O, no event loop. Every rejection is a ChatError with the code SPEC §8
names, so the endpoint can answer it and keep the connection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from chinwag.protocol.errors import ChatError, InvalidJson, InvalidMessage, UnknownType
from chinwag.protocol.messages import CLIENT_TYPES, ROOM_TYPES, ClientMessage

_UPLOAD_TAGS = frozenset({"init", "chunk", "finalize", "status"})
_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


def decode(frame: str | bytes) -> ClientMessage:
    """Parse one client frame. Raises InvalidJson, InvalidMessage or UnknownType."""
    try:
        raw = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"frame is not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise InvalidMessage("frame must be a JSON object",
                             details=[_detail("", "not an object")])
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
        raise InvalidMessage(f"invalid field '{first['field']}': {first['error']}",
                             details=details) from None
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


def event(kind: str, data: dict[str, Any], room_id: str | None = None,
          seq: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "data": data}
    if room_id is not None:
        out["room_id"] = room_id
    if seq is not None:
        out["seq"] = seq
    return out


def error_event(code: str, message: str, *, message_id: str | None = None,
                details: Any = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"error": message, "code": code}
    if message_id is not None:
        data["message_id"] = message_id
    if details is not None:
        data["details"] = details
    data.update({k: v for k, v in extra.items() if v is not None})
    return {"type": "error", "data": data}


def utc_now() -> str:
    """Now as ISO 8601 UTC with milliseconds and ``Z``."""
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_timestamp(seconds: float) -> str:
    return iso(datetime.fromtimestamp(seconds, UTC))
