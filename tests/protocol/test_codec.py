"""The codec without a server or an event loop."""

from __future__ import annotations

import pytest

from chinwag.protocol import codec
from chinwag.protocol.codes import ErrorCode
from chinwag.protocol.errors import ChatError
from chinwag.protocol.messages import Chat, FileUpload, JoinRoom, UploadFinalize


def code_of(frame: str) -> ErrorCode:
    with pytest.raises(ChatError) as info:
        codec.decode(frame)
    return info.value.code


def test_room_id_inside_data_is_moved_to_the_envelope() -> None:
    msg = codec.decode('{"type":"join_room","data":{"room_id":"r-1","room_type":"shared"}}')
    assert isinstance(msg, JoinRoom) and msg.room_id == "r-1"
    assert msg.data.room_type == "shared"


def test_room_ids_have_64_name_characters_and_may_name_a_personal_stream() -> None:
    join = '{"type":"join_room","room_id":"%s"}'
    assert isinstance(codec.decode(join % ("r" * 64)), JoinRoom)
    assert isinstance(codec.decode(join % ("@" + "u" * 64)), JoinRoom)
    assert code_of(join % ("r" * 65)) is ErrorCode.INVALID_MESSAGE
    assert code_of(join % "@") is ErrorCode.INVALID_MESSAGE


def test_room_id_in_both_places_must_agree() -> None:
    assert (
        code_of('{"type":"typing","room_id":"a","data":{"room_id":"b","is_typing":true}}')
        is ErrorCode.INVALID_MESSAGE
    )


def test_numeric_message_id_becomes_a_string() -> None:
    msg = codec.decode('{"type":"chat","message_id":7,"data":{"message":"x"}}')
    assert isinstance(msg, Chat) and msg.message_id == "7" and msg.data.ai is True


def test_guide_chat_frame_with_null_conversation_is_valid() -> None:
    msg = codec.decode(
        '{"type":"chat","data":{"message":"Hello, AI!","conversation_id":null,'
        '"model_preference":"gpt-4","temperature":0.7},"room_id":"room-123",'
        '"message_id":"msg-1"}'
    )
    assert isinstance(msg, Chat) and msg.data.temperature == 0.7


def test_checksum_accepts_prefix_and_upper_case() -> None:
    msg = codec.decode(
        '{"type":"file_upload","data":{"upload_type":"finalize","file_id":"f",'
        '"checksum":"sha256:' + "AB" * 32 + '"}}'
    )
    assert isinstance(msg, FileUpload) and isinstance(msg.data, UploadFinalize)
    assert msg.data.checksum == "ab" * 32


def _upload(data: str) -> str:
    return '{"type":"file_upload","data":{' + data + "}}"


# The upload manager relies on these: it no longer checks types, signs or the
# checksum's form itself.
@pytest.mark.parametrize(
    "data",
    [
        '"upload_type":"init","file_name":"a.txt","file_size":-1',
        '"upload_type":"chunk","file_id":"f","chunk_index":-1,"chunk_data":"eA=="',
        '"upload_type":"chunk","file_id":"f","chunk_index":0,"chunk_data":5',
        '"upload_type":"finalize","file_id":"f","checksum":""',
        '"upload_type":"finalize","file_id":"f","checksum":"abc"',
        '"upload_type":"finalize","file_id":"f","checksum":"' + "z" * 64 + '"',
        '"upload_type":"finalize","file_id":"f","checksum":"md5:' + "0" * 64 + '"',
    ],
)
def test_upload_fields_of_the_wrong_type_sign_or_form_are_invalid_message(data: str) -> None:
    assert code_of(_upload(data)) is ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("", ErrorCode.INVALID_JSON),
        ("nul", ErrorCode.INVALID_JSON),
        ('"just a string"', ErrorCode.INVALID_MESSAGE),
        ('{"type": 5}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "nope"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "chat", "data": {"message": ""}}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "chat", "data": {"message": "x"}, "extra": 1}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "cancel", "data": {}}', ErrorCode.INVALID_MESSAGE),
    ],
)
def test_rejections_carry_the_right_code(frame: str, code: ErrorCode) -> None:
    assert code_of(frame) is code


def test_invalid_message_details_name_every_bad_field() -> None:
    with pytest.raises(ChatError) as info:
        codec.decode('{"type":"chat","data":{"message":"x","temperature":9,"max_tokens":0}}')
    fields = {d["field"] for d in info.value.details}
    assert fields == {"data.temperature", "data.max_tokens"}


def test_error_event_shape() -> None:
    event = codec.error_event("RATE_LIMIT", "slow down", message_id="m", retry_after=3)
    assert event == {
        "type": "error",
        "data": {"error": "slow down", "code": "RATE_LIMIT", "message_id": "m", "retry_after": 3},
    }


def test_times_are_utc_with_z() -> None:
    assert codec.utc_now().endswith("Z")
    assert codec.iso_from_timestamp(0) == "1970-01-01T00:00:00.000Z"


def test_rejections_keep_the_client_message_id() -> None:
    with pytest.raises(ChatError) as info:
        codec.decode('{"type":"chat","message_id":"m-9","data":{"message":""}}')
    assert info.value.message_id == "m-9"
    with pytest.raises(ChatError) as info:
        codec.decode('{"type":"warp","message_id":12}')
    assert info.value.message_id == "12"
