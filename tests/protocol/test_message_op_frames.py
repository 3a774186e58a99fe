"""edit_message, delete_message, react and chat's reply_to through the codec (SPEC §14)."""

from __future__ import annotations

import pytest

from chinwag.protocol import codec
from chinwag.protocol.errors import ChatError
from chinwag.protocol.messages import Chat, DeleteMessage, EditMessage, React


def rejection(frame: str) -> ChatError:
    with pytest.raises(ChatError) as info:
        codec.decode(frame)
    return info.value


def test_edit_message_takes_the_room_from_data_and_needs_content() -> None:
    msg = codec.decode(
        '{"type":"edit_message","data":{"room_id":"r","message_id":4,"content":"fixed"}}'
    )
    assert isinstance(msg, EditMessage) and msg.room_id == "r"
    assert (msg.data.message_id, msg.data.content) == (4, "fixed")
    error = rejection('{"type":"edit_message","room_id":"r","data":{"message_id":4,"content":""}}')
    assert error.code.value == "INVALID_MESSAGE" and "data.content" in error.message


def test_message_ops_need_a_room_and_a_positive_server_id() -> None:
    error = rejection('{"type":"delete_message","data":{"message_id":4}}')
    assert "room_id" in error.message
    error = rejection('{"type":"delete_message","room_id":"r","data":{"message_id":0}}')
    assert "data.message_id" in error.message
    assert isinstance(
        codec.decode('{"type":"delete_message","room_id":"r","data":{"message_id":4}}'),
        DeleteMessage,
    )


def test_react_defaults_to_on_and_refuses_spaces_in_the_emoji() -> None:
    msg = codec.decode(
        '{"type":"react","room_id":"r","data":{"message_id":4,"emoji":"\\ud83d\\udc4d"}}'
    )
    assert isinstance(msg, React) and msg.data.on is True and msg.data.emoji == "👍"
    error = rejection(
        '{"type":"react","room_id":"r","message_id":"m1",'
        '"data":{"message_id":4,"emoji":"two words"}}'
    )
    assert "data.emoji" in error.message and error.message_id == "m1"


def test_chat_accepts_reply_to_a_server_id() -> None:
    msg = codec.decode('{"type":"chat","room_id":"r","data":{"message":"yes","reply_to":3}}')
    assert isinstance(msg, Chat) and msg.data.reply_to == 3
    assert (
        "data.reply_to"
        in rejection(
            '{"type":"chat","room_id":"r","data":{"message":"yes","reply_to":"abc"}}'
        ).message
    )
