"""Asking the AI: one ``chat`` with ``ai:true``, then its chunks and completion.

A reply in a room is a stored room event, so after a drop its completion comes
back by ``sync`` with the whole text; a reply outside rooms is read from the
conversation's history when the connection dropped while it was written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from chinwag_client.errors import RequestError
from chinwag_client.models import Frame, Reply

if TYPE_CHECKING:
    from chinwag_client.client import Client

# How long a roomless ask waits in silence after a reconnect before it reads the
# conversation's history (the completion may have been sent while offline).
HISTORY_CHECK_AFTER = 2.0


class AskStream:
    """Iterate for the text chunks; ``reply`` is set when the iteration ends."""

    def __init__(
        self,
        client: Client,
        text: str,
        conversation_id: int | None,
        model: str | None,
        room_id: str | None,
        options: dict[str, Any],
    ) -> None:
        from chinwag_client.pending import new_message_id

        self.client = client
        self.room_id = room_id
        self.message_id = new_message_id()
        data: dict[str, Any] = {
            "message": text,
            "ai": True,
            "conversation_id": conversation_id,
            **options,
        }
        if model is not None:
            data["model_preference"] = model
        self.frame: Frame = {"type": "chat", "message_id": self.message_id, "data": data}
        if room_id is not None:
            self.frame["room_id"] = room_id
        self.conversation_id: int | None = None
        self.turn_id: int | None = None
        self.reply: Reply | None = None
        self._frames: asyncio.Queue[Frame] = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    def _watch(self, frame: Frame) -> bool:
        """Called with every frame received: keep those of this reply (a roomless
        reply is the asker's alone, so it is not handed to ``events()`` as well)."""
        data = frame.get("data") or {}
        kind = frame.get("type")
        if self.conversation_id is None:
            if (
                kind == "delivery_confirmation"
                and self.room_id is None
                and data.get("message_id") == self.message_id
            ):
                self.conversation_id = data.get("conversation_id")
                self.turn_id = data.get("server_message_id")
                return True
            elif (
                kind == "chat"
                and data.get("role") == "user"
                and frame.get("room_id") == self.room_id
                and data.get("client_message_id") == self.message_id
                and data.get("username") == self.client.username
            ):
                self.conversation_id = data.get("conversation_id")
            return False
        if data.get("conversation_id") != self.conversation_id:
            return False
        if (
            kind == "chat"
            and data.get("role") == "assistant"
            and frame.get("room_id") in self._reply_rooms()
        ) or kind == "error":
            self._frames.put_nowait(frame)
            return self.room_id is None
        return False

    def _reply_rooms(self) -> tuple[str | None, ...]:
        """Where this reply's frames come from: its room; for a roomless one, no room
        (the chunks) and the asker's personal stream ``@<username>`` (the stored
        completion, with a seq)."""
        if self.room_id is not None:
            return (self.room_id,)
        return (None, "@" + self.client.username)

    async def _run(self) -> AsyncIterator[str]:
        from chinwag_client.messages import confirms

        client = self.client
        stop = client.listen(self._watch)
        try:
            connections = client.connections
            await client.request(self.frame, lambda f: confirms(f, self.message_id))
            parts: list[str] = []
            while True:
                try:
                    async with asyncio.timeout(HISTORY_CHECK_AFTER):
                        frame = await self._frames.get()
                except TimeoutError:
                    if client.connections != connections and self.room_id is None:
                        frame = await self._from_history() or {}
                        if not frame:
                            continue
                    else:
                        continue
                data = frame.get("data") or {}
                if frame.get("type") == "error":
                    raise RequestError(
                        str(data.get("code")), str(data.get("error", "")), data.get("details"), data
                    )
                content = str(data.get("content") or "")
                if not data.get("done"):
                    parts.append(content)
                    yield content
                    continue
                if not content and self.room_id is None and client.connections != connections:
                    # Chunks may have been lost in the drop: the stored text is whole.
                    stored = await self._from_history()
                    content = str((stored or {}).get("data", {}).get("content") or "")
                so_far = "".join(parts)
                if content.startswith(so_far) and len(content) > len(so_far):
                    yield content[len(so_far) :]  # chunks missed while the connection was down
                self.reply = _reply(data, content or so_far, frame, self.conversation_id)
                return
        finally:
            stop()

    async def _from_history(self) -> Frame | None:
        client = self.client
        r = await client.http.get(
            f"/api/v1/conversations/{self.conversation_id}/messages",
            headers=await client.credentials.auth_headers(),
        )
        if r.status_code != 200:
            return None
        turns = r.json().get("messages", [])
        for turn in turns:
            if turn.get("role") == "assistant" and int(turn.get("id", 0)) > (self.turn_id or 0):
                return {
                    "type": "chat",
                    "data": {**turn, "done": True, "conversation_id": self.conversation_id},
                }
        return None


def _reply(data: dict[str, Any], text: str, frame: Frame, conversation_id: int | None) -> Reply:
    return Reply(
        text=text,
        conversation_id=int(conversation_id or data["conversation_id"]),
        tokens_used=int(data.get("tokens_used") or 0),
        model_used=str(data.get("model_used") or ""),
        cost_usd=float(data.get("cost_usd") or 0.0),
        room_id=frame.get("room_id"),
        seq=frame.get("seq"),
        cancelled=bool(data.get("cancelled")),
        model_fallback=bool(data.get("model_fallback")),
    )
