"""Hypothesis strategies for frames a hostile client sends: valid JSON of wrong
shapes, huge and negative numbers, deep nesting, odd Unicode, and text that is not
JSON at all. Shared by the codec's property test and the live server's."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from chinwag.protocol.messages import CLIENT_TYPES

# Surrogates cannot be encoded as UTF-8 (no client can send them); everything else
# goes: combining marks, bidi controls, fullwidth forms, NUL, astral planes.
odd_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
edge_ints = st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)]
)
numbers = st.one_of(st.integers(), edge_ints, st.floats(allow_nan=False, allow_infinity=False))
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(odd_text, inner, max_size=4)
    ),
    max_leaves=12,
)

FIELDS = (
    "message",
    "conversation_id",
    "model_preference",
    "system_prompt",
    "temperature",
    "max_tokens",
    "ai",
    "room_id",
    "room_name",
    "room_type",
    "history_visibility",
    "is_typing",
    "seq",
    "rooms",
    "token",
    "upload_type",
    "file_name",
    "file_size",
    "mime_type",
    "file_id",
    "chunk_index",
    "total_chunks",
    "chunk_data",
    "checksum",
)
UPLOAD_TYPES = ("init", "chunk", "finalize", "status", "bogus")

# A ``data`` object with the field names the server knows, holding any value.
known_shapes = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
upload_shapes = st.builds(
    lambda kind, rest: {"upload_type": kind, **rest}, st.sampled_from(UPLOAD_TYPES), known_shapes
)
frame_types = st.one_of(st.sampled_from(sorted(CLIENT_TYPES)), json_values)


@st.composite
def frame_objects(draw: st.DrawFn) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": draw(frame_types)}
    if draw(st.booleans()):
        frame["data"] = draw(st.one_of(known_shapes, upload_shapes, json_values))
    for key in ("room_id", "message_id"):
        if draw(st.booleans()):
            frame[key] = draw(
                st.one_of(json_values, st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True))
            )
    if draw(st.integers(0, 5)) == 0:
        frame[draw(odd_text)] = draw(json_values)
    return frame


R = "hostile-room"  # the live test's user is a member
#: One valid frame of each kind; a hostile frame is one of these with one leaf
#: replaced by a hostile value (so it gets past every other check of its type).
TEMPLATES: tuple[dict[str, Any], ...] = (
    {"type": "ping"},
    {
        "type": "chat",
        "message_id": "m",
        "data": {"message": "hi", "conversation_id": None, "temperature": 1, "max_tokens": 5},
    },
    {"type": "chat", "room_id": R, "data": {"message": "hi", "ai": False}},
    {
        "type": "join_room",
        "room_id": R,
        "data": {"room_name": "n", "room_type": "shared", "history_visibility": "shared"},
    },
    {"type": "leave_room", "room_id": "other-room"},
    {"type": "typing", "room_id": R, "data": {"is_typing": True}},
    {"type": "read_receipt", "room_id": R, "data": {"seq": 0}},
    {"type": "sync", "data": {"rooms": {R: 0}}},
    {"type": "cancel", "data": {"conversation_id": 1}},
    {"type": "refresh_token", "data": {"token": "x"}},
    {"type": "file_upload", "data": {"upload_type": "init", "file_name": "a.txt", "file_size": 3}},
    {
        "type": "file_upload",
        "data": {
            "upload_type": "chunk",
            "file_id": "f",
            "chunk_index": 0,
            "total_chunks": 1,
            "chunk_data": "YWJj",
        },
    },
    {"type": "file_upload", "data": {"upload_type": "status", "file_id": "f"}},
    {
        "type": "file_upload",
        "data": {"upload_type": "finalize", "file_id": "f", "checksum": "0" * 64},
    },
)


def _leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] + [(*path, "extra")]
    return [path]


def _replace(value: Any, path: tuple[str, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else {}
    copy[path[0]] = _replace(copy.get(path[0]), path[1:], new)
    return copy


PLACES = [(t, p) for t in TEMPLATES for p in _leaves(t) if p != ("type",)]
hostile_values = st.one_of(edge_ints, edge_ints, json_values)
mutated_frames = st.builds(
    lambda place, v: _replace(place[0], place[1], v), st.sampled_from(PLACES), hostile_values
)


def _nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"type":"ping","data":' + '{"a":' * depth + "1" + "}" * depth + "}"


deep_nesting = st.builds(_nested, st.integers(1, 3000), st.sampled_from(["list", "dict"]))


def _text(value: Any) -> str:
    # json, not orjson: integers beyond 64 bits are part of the point
    return json.dumps(value, ensure_ascii=False)


#: Text frames: JSON objects of wrong shapes, other JSON, deep nesting, non-JSON text.
frames = st.one_of(
    mutated_frames.map(_text),
    mutated_frames.map(_text),
    mutated_frames.map(_text),
    frame_objects().map(_text),
    json_values.map(_text),
    deep_nesting,
    odd_text,
)
