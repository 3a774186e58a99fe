"""Runs AI replies: context, streaming, cancellation, timeouts, accounting, storage.

A reply belongs to the service, not to the connection that asked for it: if the
sender disconnects, it still runs to the end and is stored, so it reaches them by
the offline queue, ``sync`` or history. Providers know nothing of any of this."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chinwag.ai.base import (
    ChatTurn,
    GenerationParams,
    Provider,
    TextDelta,
    UsageReport,
    resolve_model,
    trim_context,
)
from chinwag.ai.pricing import PriceTable
from chinwag.ai.tokens import count_prompt_tokens, count_tokens
from chinwag.core.events import Events
from chinwag.core.session import Identity
from chinwag.core.stats import NodeStats
from chinwag.protocol import frames
from chinwag.protocol.codec import encode
from chinwag.protocol.errors import AIProviderError, ChatError, Forbidden, NotFound
from chinwag.protocol.messages import ChatData
from chinwag.store.base import ConversationRecord, Store, conversation_title

log = logging.getLogger(__name__)
ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class AssistantConfig:
    default_model: str
    timeout: float
    context_tokens: int


@dataclass(slots=True)
class _Reply:
    owner: str
    conversation_id: int
    task: asyncio.Task[None] | None = None
    cancelled: bool = False


class Assistant:
    def __init__(self, provider: Provider, prices: PriceTable, store: Store, events: Events,
                 stats: NodeStats, config: AssistantConfig) -> None:
        self.provider = provider
        self.prices = prices
        self.store = store
        self.events = events
        self.stats = stats
        self.config = config
        self._running: dict[int, _Reply] = {}

    async def conversation(self, who: Identity, conversation_id: int | None, first_message: str,
                           room_id: str | None) -> ConversationRecord:
        """The conversation a chat belongs to: a new one for ``None``; someone else's is
        FORBIDDEN, and so is one that started in another room (or outside rooms, or in
        a deleted room of the same id): its turns never feed a reply elsewhere."""
        if conversation_id is None:
            return await self.store.conversations.create(
                who.username, conversation_title(first_message), room_id)
        conv = await self.store.conversations.get(conversation_id)
        if conv is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        if conv.owner != who.username:
            raise Forbidden(f"conversation {conversation_id} belongs to someone else")
        if conv.room_id != room_id or not await self._room_outlived(conv):
            raise Forbidden(f"conversation {conversation_id} belongs to "
                            + (f"room '{conv.room_id}'" if conv.room_id else "no room")
                            + "; start a new conversation here")
        return conv

    async def _room_outlived(self, conv: ConversationRecord) -> bool:
        """The conversation's room is the row it started in, not a later one that took
        its id after a delete."""
        if conv.room_id is None:
            return True
        room = await self.store.rooms.get(conv.room_id)
        return room is not None and _utc(room.created_at) <= _utc(conv.created_at)

    def start(self, who: Identity, conv: ConversationRecord, data: ChatData,
              room_id: str | None) -> None:
        """Start streaming a reply to the turn just stored in ``conv``."""
        reply = _Reply(who.username, conv.id)
        self._running[conv.id] = reply
        reply.task = asyncio.create_task(self._run(reply, who, conv, data, room_id))

    def cancel(self, who: Identity, conversation_id: int) -> bool:
        reply = self._running.get(conversation_id)
        if reply is None or reply.owner != who.username:
            return False
        reply.cancelled = True
        if reply.task is not None:
            reply.task.cancel()
        return True

    @property
    def active(self) -> int:
        return len(self._running)

    async def close(self) -> None:
        """Wait for running replies (they finish and are stored), bounded by the timeout."""
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.timeout)
        for task in tasks:
            task.cancel()

    async def _run(self, reply: _Reply, who: Identity, conv: ConversationRecord, data: ChatData,
                   room_id: str | None) -> None:
        hub = self.events.hub
        started = time.monotonic()
        model, fell_back = resolve_model(self.provider, data.model_preference,
                                         self.config.default_model)
        history = await self.store.conversations.turns(conv.id)
        earlier = [ChatTurn(t.role, t.content) for t in history[:-1]  # type: ignore[arg-type]
                   if t.role in ("user", "assistant")]
        turns = trim_context(data.system_prompt, earlier, data.message, self.config.context_tokens)
        params = GenerationParams(model, data.temperature, data.max_tokens)
        prompt_tokens = count_prompt_tokens(turns)
        completion_tokens = 0
        reported: UsageReport | None = None
        parts: list[str] = []
        failure: ChatError | None = None
        self.stats.ai_requests += 1
        if room_id:
            await self._typing(room_id, True)
        stream = self.provider.stream(turns, params)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.config.timeout):
                        item = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise AIProviderError(
                        f"the model sent nothing for {self.config.timeout:g} s") from None
                if isinstance(item, UsageReport):
                    reported = item
                elif isinstance(item, TextDelta):
                    parts.append(item.text)
                    completion_tokens += count_tokens(item.text)
                    chunk = encode(frames.ai_chunk(item.text, conv.id, room_id))
                    await hub.publish_chunk(room_id, who.username, conv.id, chunk)
        except asyncio.CancelledError:
            if not reply.cancelled:
                raise
        except ChatError as exc:
            failure = exc
        except Exception as exc:
            log.exception("AI reply for conversation %s failed", conv.id)
            failure = AIProviderError(f"the model failed: {type(exc).__name__}")
        finally:
            await stream.aclose()
        try:
            if reported is not None and not reply.cancelled:
                prompt_tokens = reported.prompt_tokens
                completion_tokens = reported.completion_tokens
            await self._finish(who, conv, room_id, "".join(parts), model, fell_back,
                               prompt_tokens, completion_tokens, started, reply.cancelled,
                               failure)
        finally:
            self._running.pop(conv.id, None)
            if room_id:
                await self._typing(room_id, False)

    async def _finish(self, who: Identity, conv: ConversationRecord, room_id: str | None,
                      content: str, model: str, fell_back: bool, prompt_tokens: int,
                      completion_tokens: int, started: float, cancelled: bool,
                      failure: ChatError | None) -> None:
        tokens = prompt_tokens + completion_tokens
        cost = self.prices.cost_usd(model, prompt_tokens, completion_tokens)
        self.stats.ai_tokens_used += tokens
        self.stats.ai_cost_usd += cost
        hub = self.events.hub
        if failure is not None:
            await hub.send_user(who.username, encode(frames.error(
                failure.code.value, failure.message, conversation_id=conv.id,
                tokens_used=tokens)))
            if not content:
                return
        turn = await self.store.conversations.add_turn(
            conv.id, "assistant", content, model=model, tokens_used=tokens, cost_usd=cost)
        summary: dict[str, Any] = {
            "role": "assistant", "streaming": False, "done": True,
            "conversation_id": conv.id, "tokens_used": tokens, "model_used": model,
            "cost_usd": cost, "response_time": round(time.monotonic() - started, 3),
        }
        if fell_back:
            summary["model_fallback"] = True
        if cancelled:
            summary["cancelled"] = True
        if failure is not None:
            summary["error"] = failure.code.value
        if room_id is None:
            live = {**summary, "content": "", "message_id": turn.id,
                    "timestamp": frames.utc_now()}
            await hub.send_user(who.username, encode(frames.ai_done(live)))
            return
        stored = {**summary, "content": content, "username": ASSISTANT,
                  "reply_to": who.username, "timestamp": frames.utc_now()}
        await self.events.append_ai(room_id, stored)

    async def _typing(self, room_id: str, on: bool) -> None:
        text = encode(frames.typing(room_id, ASSISTANT, ASSISTANT, on))
        await self.events.hub.publish_ephemeral(room_id, text)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
