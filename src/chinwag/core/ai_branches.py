"""Regenerate and edit: a new reply on a new branch of the conversation.

Nothing is deleted. ``regenerate`` answers the active branch's last user turn again
(the new reply is a sibling of the old one); ``edit`` adds a sibling of a user turn
with the new text and answers it. The model sees only the branch it answers. The
new branch is the active one (it ends in the newest turn); replies of a conversation
bound to a room go to that room, as the conversation's first reply did."""

from __future__ import annotations

from chinwag.core.assistant import Assistant
from chinwag.core.session import Session
from chinwag.protocol import frames
from chinwag.protocol import messages as m
from chinwag.protocol.errors import InvalidMessage, NotFound, NotInRoom
from chinwag.store.base import ConversationRecord, Store


async def regenerate(
    assistant: Assistant, store: Store, session: Session, msg: m.Regenerate
) -> None:
    who, data = session.identity, msg.data
    conv = await _owned(assistant, session, data.conversation_id)
    branch = await store.conversations.branch(conv.id)
    question = next((t for t in reversed(branch) if t.role == "user"), None)
    if question is None:
        raise InvalidMessage(f"conversation {conv.id} has no user turn to answer again")
    room_id = await _room_of(store, session, conv)
    plan = await assistant.admit(
        who, data, question.content, conv.id, room_id, before=question.parent_id
    )
    plan.answer_to = question.id
    session.send(frames.ai_confirmation(msg.message_id, question.id, conv.id))
    assistant.start(plan)


async def edit(assistant: Assistant, store: Store, session: Session, msg: m.Edit) -> None:
    who, data = session.identity, msg.data
    conv = await _owned(assistant, session, data.conversation_id)
    if msg.message_id is not None:
        prior = await store.conversations.find_turn(who.username, msg.message_id)
        if prior is not None:
            session.send(
                frames.ai_confirmation(
                    msg.message_id, prior.id, prior.conversation_id, duplicate=True
                )
            )
            return
    turn = await store.conversations.turn(data.turn_id)
    if turn is None or turn.conversation_id != conv.id:
        raise NotFound(f"conversation {conv.id} has no turn {data.turn_id}")
    if turn.role != "user":
        raise InvalidMessage(
            f"turn {turn.id} is the assistant's: only user turns are edited",
            details=[{"field": "turn_id", "error": "not a user turn"}],
        )
    room_id = await _room_of(store, session, conv)
    plan = await assistant.admit(who, data, data.message, conv.id, room_id, before=turn.parent_id)
    try:
        edited = await store.conversations.add_turn(
            conv.id,
            "user",
            data.message,
            username=who.username,
            client_message_id=msg.message_id,
            parent_id=turn.parent_id,
        )
    except BaseException:
        await assistant.release(plan)
        raise
    plan.answer_to = edited.id
    session.send(frames.ai_confirmation(msg.message_id, edited.id, conv.id))
    assistant.start(plan)


async def _owned(
    assistant: Assistant, session: Session, conversation_id: int
) -> ConversationRecord:
    conv = await assistant.admission.conversation(session.identity, conversation_id, "its own")
    assert conv is not None
    return conv


async def _room_of(store: Store, session: Session, conv: ConversationRecord) -> str | None:
    if (
        conv.room_id is not None
        and await store.rooms.member(conv.room_id, session.username) is None
    ):
        raise NotInRoom(
            f"you are not a member of room '{conv.room_id}', where conversation {conv.id} is held"
        )
    return conv.room_id
