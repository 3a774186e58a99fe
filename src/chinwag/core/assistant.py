"""Runs AI replies: streaming, fall-back, cancellation, timeouts, accounting, storage.

A reply belongs to the service, not to the connection that asked for it: if the
sender disconnects, it still runs to the end and is stored, so it reaches them by
the offline queue, ``sync`` or history. Whether a reply may start at all is
``ai_admission``'s business; providers know nothing of any of this."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chinwag.ai.base import GenerationParams, TextDelta, UsageReport
from chinwag.ai.tokens import count_tokens
from chinwag.core import metrics
from chinwag.core.ai_admission import LATEST, Admission, Before, Plan
from chinwag.core.events import Events
from chinwag.core.personal import ensure_personal
from chinwag.core.session import Identity
from chinwag.core.stats import NodeStats
from chinwag.core.typing_state import lease_ttl, typing_lease
from chinwag.protocol import frames
from chinwag.protocol.codec import encode
from chinwag.protocol.errors import AIProviderError, BudgetExceeded, ChatError
from chinwag.protocol.messages import AiOptions
from chinwag.store.base import Store

log = logging.getLogger(__name__)
ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class AssistantConfig:
    timeout: float
    drain_timeout: float = 30.0  # how long replies running at shutdown may go on
    typing_timeout: float = 10.0  # the assistant's typing lease: as a user's (typing_state)


@dataclass(slots=True)
class _Reply:
    plan: Plan
    task: asyncio.Task[None] | None = None
    cancelled: bool = False


class _Silence:
    """Cancels the reply's task once the model has sent nothing for ``limit`` s.

    One timer, re-armed only when it comes due (to the last item's time + ``limit``),
    where an ``asyncio.timeout`` around every item costs a timer and a context
    manager per chunk."""

    __slots__ = ("_heard", "_limit", "_loop", "_task", "_timer", "fired")

    def __init__(self, limit: float, task: asyncio.Task[Any]) -> None:
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._task = task
        self._heard = self._loop.time()
        self._timer = self._loop.call_at(self._heard + limit, self._due)
        self.fired = False

    def hear(self) -> None:
        """The model sent something: the limit counts from now."""
        self._heard = self._loop.time()

    def _due(self) -> None:
        due = self._heard + self._limit
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._due)
        else:
            self.fired = True
            self._task.cancel()

    def stop(self) -> None:
        self._timer.cancel()


@dataclass(slots=True)
class _Outcome:
    model: str
    parts: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failure: ChatError | None = None
    first_chunk_at: float | None = None


class Assistant:
    def __init__(
        self,
        admission: Admission,
        store: Store,
        events: Events,
        stats: NodeStats,
        config: AssistantConfig,
    ) -> None:
        self.admission = admission
        self.catalog = admission.catalog
        self.store = store
        self.events = events
        self.stats = stats
        self.config = config
        self._running: dict[int, _Reply] = {}
        self._leases: asyncio.Task[None] | None = None
        self._cancels = f"ai-cancel:{admission.config.node_id}"  # this process's channel

    async def admit(
        self,
        who: Identity,
        data: AiOptions,
        message: str,
        conversation_id: int | None,
        room_id: str | None,
        before: Before = LATEST,
    ) -> Plan:
        """Check and reserve a reply (raises the error that refuses it); by default it
        continues the conversation's active branch (see ``Admission.admit``)."""
        await self._listen()
        try:
            return await self.admission.admit(who, data, message, conversation_id, room_id, before)
        except BudgetExceeded:
            metrics.AI_BUDGET_REFUSALS.inc()
            raise

    async def _listen(self) -> None:
        """Hear cancels sent from other processes, before this one runs any reply."""
        hub = self.events.hub
        if self._cancels in hub.listeners:
            return
        hub.listeners[self._cancels] = self._on_cancel
        try:
            await hub.broker.subscribe(self._cancels)
        except Exception:
            del hub.listeners[self._cancels]  # try again with the next reply
            raise

    def _on_cancel(self, payload: bytes) -> None:
        try:
            request = json.loads(payload)
            self._cancel_here(str(request["username"]), int(request["conversation_id"]))
        except (ValueError, KeyError, TypeError):
            log.warning("dropping a malformed AI cancel request")

    async def release(self, plan: Plan) -> None:
        """Give back the reservation of a plan that will not be started."""
        await self.store.budgets.settle(plan.reply_id, 0, 0.0)

    def start(self, plan: Plan) -> None:
        """Start streaming the reply of an admitted plan (its user turn is stored)."""
        reply = _Reply(plan)
        self._running[plan.conv.id] = reply
        reply.task = asyncio.create_task(self._run(reply))
        if self._leases is None or self._leases.done():
            self._leases = asyncio.create_task(self._renew_leases())

    async def cancel(self, who: Identity, conversation_id: int) -> bool:
        """Stop the caller's reply in that conversation, wherever it runs: False when
        none is running."""
        if self._cancel_here(who.username, conversation_id):
            return True
        running = await self.store.budgets.running_in(conversation_id, datetime.now(UTC))
        if running is None or running[0] != who.username:
            return False
        request = json.dumps({"username": who.username, "conversation_id": conversation_id})
        await self.events.hub.broker.publish(f"ai-cancel:{running[1]}", request.encode())
        return True

    def _cancel_here(self, username: str, conversation_id: int) -> bool:
        reply = self._running.get(conversation_id)
        if reply is None or reply.plan.who.username != username:
            return False
        reply.cancelled = True
        if reply.task is not None:
            reply.task.cancel()
        return True

    @property
    def active(self) -> int:
        return len(self._running)

    async def close(self) -> None:
        """Wait for running replies (they finish and are stored), at most
        ``drain_timeout`` seconds; then cancel what is left."""
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            log.info("waiting for %d AI replies to finish", len(tasks))
            await asyncio.wait(tasks, timeout=self.config.drain_timeout)
        for task in tasks:
            task.cancel()
        if self._leases is not None:
            self._leases.cancel()

    async def _renew_leases(self) -> None:
        """Keep the running replies' reservations alive while this process lives; a
        process that dies stops renewing, and its replies stop counting as running."""
        lease = self.admission.config.lease_seconds
        while self._running:
            await asyncio.sleep(lease / 3)
            ids = [r.plan.reply_id for r in self._running.values()]
            with contextlib.suppress(Exception):
                await self.store.budgets.extend(ids, datetime.now(UTC) + timedelta(seconds=lease))

    async def _run(self, reply: _Reply) -> None:
        plan = reply.plan
        started = time.monotonic()
        outcome = _Outcome(plan.models[0])
        self.stats.ai_requests += 1
        typing = None
        if plan.room_id:
            await self._typing(plan.room_id, plan.conv.id, True)
            typing = asyncio.create_task(self._keep_typing(plan.room_id, plan.conv.id))
        try:
            for index, model in enumerate(plan.models):
                outcome = _Outcome(model, prompt_tokens=plan.prompt_tokens)
                await self._stream(plan, outcome, reply)
                last = index == len(plan.models) - 1
                if outcome.failure is None or outcome.parts or last or reply.cancelled:
                    break
                log.warning(
                    "AI model %s failed before its first chunk in conversation %s; trying %s",
                    model,
                    plan.conv.id,
                    plan.models[index + 1],
                )
            await self._finish(plan, outcome, started, reply.cancelled)
        finally:
            if self._running.get(plan.conv.id) is reply:
                del self._running[plan.conv.id]
            if typing is not None:
                typing.cancel()
            if plan.room_id:
                await self._typing(plan.room_id, plan.conv.id, False)

    async def _stream(self, plan: Plan, out: _Outcome, reply: _Reply) -> None:
        provider = self.catalog.provider_for(out.model)
        if provider is None:
            out.failure = AIProviderError(f"no provider serves {out.model!r} now")
            return
        params = GenerationParams(out.model, plan.temperature, plan.max_tokens[out.model])
        reported: UsageReport | None = None
        stream = provider.stream(plan.turns, params)
        task = asyncio.current_task()
        assert task is not None
        silence = _Silence(self.config.timeout, task)
        try:
            async for item in stream:
                silence.hear()
                if isinstance(item, TextDelta):
                    first = out.first_chunk_at is None
                    if first:
                        out.first_chunk_at = time.monotonic()
                    out.parts.append(item.text)
                    chunk = encode(frames.ai_chunk(item.text, plan.conv.id, plan.room_id))
                    await self.events.hub.publish_chunk(
                        plan.room_id, plan.who.username, plan.conv.id, chunk, first
                    )
                elif isinstance(item, UsageReport):
                    reported = item
        except asyncio.CancelledError:
            ours = 1 if silence.fired else 0
            if task.cancelling() > ours and not reply.cancelled:
                raise  # shut down, not stopped by the user nor gone silent
        except ChatError as exc:  # AIProviderError among them
            out.failure = exc
        except Exception as exc:
            log.exception("AI reply for conversation %s failed", plan.conv.id)
            out.failure = AIProviderError(f"the model failed: {type(exc).__name__}")
        finally:
            silence.stop()  # first: no await between the stream's end and this
            await stream.aclose()
        if silence.fired:
            task.uncancel()
            if not reply.cancelled:
                out.failure = AIProviderError(
                    f"the model sent nothing for {self.config.timeout:g} s"
                )
        if isinstance(out.failure, AIProviderError):
            log.warning(
                "AI provider failed in conversation %s (model %s): %s",
                plan.conv.id,
                out.model,
                out.failure.internal or out.failure.message,
            )
        if reported is not None and not reply.cancelled:
            out.prompt_tokens = reported.prompt_tokens
            out.completion_tokens = reported.completion_tokens
        else:  # counted once on the whole text: a word split over two chunks is one word
            out.completion_tokens = count_tokens("".join(out.parts))

    async def _finish(self, plan: Plan, out: _Outcome, started: float, cancelled: bool) -> None:
        tokens = out.prompt_tokens + out.completion_tokens
        cost = self.catalog.prices.cost_usd(out.model, out.prompt_tokens, out.completion_tokens)
        await self.store.budgets.settle(plan.reply_id, tokens, cost)
        self.stats.ai_tokens_used += tokens
        self.stats.ai_cost_usd += cost
        self._measure(plan, out, started, cost, cancelled)
        hub, conv, who = self.events.hub, plan.conv, plan.who
        content = "".join(out.parts)
        if content or out.failure is None:  # stored before anyone hears the reply ended
            await self.store.conversations.add_turn(
                conv.id,
                "assistant",
                content,
                model=out.model,
                tokens_used=tokens,
                cost_usd=cost,
                parent_id=plan.answer_to,
            )
        if out.failure is not None:
            await hub.send_user(
                who.username,
                encode(
                    frames.error(
                        out.failure.code.value,
                        out.failure.message,
                        conversation_id=conv.id,
                        tokens_used=tokens,
                    )
                ),
            )
            if not content:
                return
        summary: dict[str, Any] = {
            "role": "assistant",
            "streaming": False,
            "done": True,
            "conversation_id": conv.id,
            "tokens_used": tokens,
            "model_used": out.model,
            "cost_usd": cost,
            "response_time": round(time.monotonic() - started, 3),
        }
        if plan.fell_back or out.model != plan.models[0]:
            summary["model_fallback"] = True
        if cancelled:
            summary["cancelled"] = True
        if out.failure is not None:
            summary["error"] = out.failure.code.value
        # A roomless reply goes to its requester's personal stream: stored with a
        # seq, like a room's, so the offline queue and ``sync`` replay it.
        room_id = plan.room_id or await ensure_personal(self.store, hub, who.username)
        stored = {
            **summary,
            "content": content,
            "username": ASSISTANT,
            "reply_to": who.username,
            "timestamp": frames.utc_now(),
        }
        await self.events.append_ai(room_id, stored)

    def _measure(
        self, plan: Plan, out: _Outcome, started: float, cost: float, cancelled: bool
    ) -> None:
        provider = self.catalog.provider_for(out.model)
        name = provider.name if provider is not None else "none"
        outcome = "cancelled" if cancelled else "error" if out.failure is not None else "ok"
        labels = (name, out.model, outcome)
        metrics.AI_REQUESTS.labels(*labels).inc()
        metrics.AI_TOKENS_IN.labels(*labels).inc(out.prompt_tokens)
        metrics.AI_TOKENS_OUT.labels(*labels).inc(out.completion_tokens)
        metrics.AI_COST.labels(*labels).inc(cost)
        metrics.AI_GENERATION.labels(*labels).observe(time.monotonic() - started)
        if out.first_chunk_at is not None:
            metrics.AI_FIRST_TOKEN.labels(name, out.model).observe(out.first_chunk_at - started)
        if plan.fell_back or out.model != plan.models[0]:
            metrics.AI_FALLBACKS.labels(name, out.model).inc()

    async def _typing(self, room_id: str, conversation_id: int, on: bool) -> None:
        """The assistant's typing in the room, leased like a user's (``leases.py``): if
        this process dies mid-reply, the others end it when the lease lapses. One
        lease per reply, so two replies in one room each show their start and end."""
        name, ttl = f"typing:{ASSISTANT}:{conversation_id}", lease_ttl(self.config.typing_timeout)
        text, lease = typing_lease(room_id, ASSISTANT, ASSISTANT, on, name, ttl)
        await self.events.hub.publish_ephemeral(room_id, text, lease=lease)

    async def _keep_typing(self, room_id: str, conversation_id: int) -> None:
        """Renew the lease while the reply runs (renewals are not shown again)."""
        while True:
            await asyncio.sleep(self.config.typing_timeout / 3)
            with contextlib.suppress(Exception):  # the next renewal tries again
                await self._typing(room_id, conversation_id, True)
