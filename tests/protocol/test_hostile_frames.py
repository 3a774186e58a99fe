"""Property: whatever text a client sends, the codec answers with a typed message or
one of the client's error codes, never another exception; and every integer in a
message it accepts fits the database."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chinwag.protocol import codec
from chinwag.protocol.codes import ErrorCode
from chinwag.protocol.errors import ChatError
from tests.protocol.hostile import frame_objects, frames, mutated_frames

BIGINT_MAX = 2**63 - 1  # PostgreSQL's BIGINT, SQLite's INTEGER
CLIENT_FAULTS = {ErrorCode.INVALID_JSON, ErrorCode.INVALID_MESSAGE, ErrorCode.UNKNOWN_TYPE}


def _ints(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ints(v)]
    if isinstance(value, list | tuple):
        return [i for v in value for i in _ints(v)]
    return []


def _check(text: str | bytes) -> None:
    try:
        message = codec.decode(text)
    except ChatError as exc:
        assert exc.code in CLIENT_FAULTS, exc
        assert exc.message
        codec.encode(
            codec.error_event(
                exc.code.value, exc.message, message_id=exc.message_id, details=exc.details
            )
        )  # the answer can be sent
        return
    ignored = {"data"} if message.type == "ping" else set()  # ping's data is never read
    for number in _ints(message.model_dump(exclude=ignored)):
        assert -BIGINT_MAX - 1 <= number <= BIGINT_MAX, message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_any_text_frame_decodes_or_is_a_client_error(text: str) -> None:
    _check(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated_frames, frame_objects()))
def test_frames_of_known_types_with_wrong_shapes_decode_or_are_client_errors(
    frame: dict[str, Any],
) -> None:
    _check(json.dumps(frame).encode())
