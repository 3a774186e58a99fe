"""Sending and changing room messages: each request carries a ``message_id`` the
server keys on, and is resent unchanged after a drop until confirmed, so it is
carried out once (a resend is answered ``duplicate``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from chinwag_client.connection import Frame
from chinwag_client.models import Change, Confirmation
from chinwag_client.pending import new_message_id


class _Requester(Protocol):
    async def request(
        self,
        frame: Frame,
        is_answer: Callable[[Frame], bool],
        *,
        resend: bool = True,
        timeout: float | None = None,
    ) -> Frame: ...

    async def _change(self, room_id: str, kind: str, data: dict[str, Any]) -> Change: ...


class MessageOps:
    """The message half of ``Client`` (which supplies ``request``)."""

    async def send(
        self: _Requester,
        room_id: str,
        text: str,
        ai: bool = False,
        reply_to: int | None = None,
        *,
        message_id: str | None = None,
        **options: Any,
    ) -> Confirmation:
        """Store ``text`` in the room. Resent with the same ``message_id`` after a
        drop until the server confirms it (a resend is never stored twice).
        ``reply_to``: the server id of the message (same room) this one answers."""
        if reply_to is not None:
            options["reply_to"] = reply_to
        mid = message_id or new_message_id()
        frame = {
            "type": "chat",
            "room_id": room_id,
            "message_id": mid,
            "data": {"message": text, "ai": ai, **options},
        }
        answer = await self.request(frame, lambda f: confirms(f, mid))
        return Confirmation.from_data(answer["data"])

    async def edit(self: _Requester, room_id: str, message_id: int, text: str) -> Change:
        """Replace the text of one's own message (``message_id``: its server id);
        every participant gets a stored ``message_edited``. ``FORBIDDEN`` for
        someone else's message, ``NOT_FOUND`` for an unknown or deleted one."""
        return await self._change(
            room_id, "edit_message", {"message_id": message_id, "content": text}
        )

    async def delete(self: _Requester, room_id: str, message_id: int) -> Change:
        """Delete a message (its author, the room's owner or an admin): its text is
        gone from the server; every participant gets a stored ``message_deleted``."""
        return await self._change(room_id, "delete_message", {"message_id": message_id})

    async def react(
        self: _Requester, room_id: str, message_id: int, emoji: str, on: bool = True
    ) -> Change:
        """Give (``on``) or take back a reaction; every participant gets a stored
        ``reaction``. One per user and emoji: a repeat is answered ``unchanged``."""
        return await self._change(
            room_id, "react", {"message_id": message_id, "emoji": emoji, "on": on}
        )

    async def _change(self: _Requester, room_id: str, kind: str, data: dict[str, Any]) -> Change:
        """Like ``send``: resent with the same ``message_id`` after a drop until
        confirmed; the server carries it out once (a resend answers ``duplicate``)."""
        mid = new_message_id()
        frame = {"type": kind, "room_id": room_id, "message_id": mid, "data": data}
        answer = await self.request(frame, lambda f: confirms(f, mid))
        return Change.from_data(answer["data"])


def confirms(frame: Frame, message_id: str) -> bool:
    data = frame.get("data") or {}
    return (
        frame.get("type") == "delivery_confirmation"
        and data.get("message_id") == message_id
        and data.get("status") == "delivered"
        and "recipient" not in data
    )
