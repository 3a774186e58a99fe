"""Deciding whether an AI reply may start, before anything is stored or any provider
is called: the input fits the context, the model is served (and priced), the user
runs fewer than ``AI_MAX_CONCURRENT_PER_USER`` replies, the conversation has no
reply running, and the reply's worst case fits the user's budgets. The last three
hold across processes: they are one reservation in the database (``BudgetStore``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from chinwag.ai.base import ChatTurn, trim_context
from chinwag.ai.catalog import Catalog
from chinwag.ai.tokens import count_prompt_tokens
from chinwag.core.session import Identity
from chinwag.protocol.errors import (
    BudgetExceeded,
    Forbidden,
    InvalidMessage,
    NotFound,
    RateLimited,
)
from chinwag.protocol.messages import AiOptions
from chinwag.store.base import (
    Budget,
    Claim,
    ConversationRecord,
    Store,
    Usage,
    Windows,
    conversation_title,
)


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    context_tokens: int
    max_concurrent_per_user: int
    budget: Budget  # the defaults (AI_BUDGET_TOKENS_PER_DAY, AI_BUDGET_USD_PER_MONTH)
    lease_seconds: float
    node_id: str


@dataclass(slots=True)
class Plan:
    """An admitted reply: what to send, with which models, under which reservation."""

    who: Identity
    conv: ConversationRecord
    room_id: str | None
    turns: list[ChatTurn]
    models: list[str]  # the chosen model, then the fall-backs
    fell_back: bool
    max_tokens: dict[str, int]  # per model of ``models``
    temperature: float | None
    prompt_tokens: int
    reply_id: int
    parent_id: int | None  # the last turn the model sees before the new message
    answer_to: int | None = None  # the user turn the reply answers, once stored


#: Which turns come before the new message: the conversation's active branch, or the
#: branch ending at a given turn (``None``: no earlier turns).
Before = int | None | Literal["latest"]
LATEST: Literal["latest"] = "latest"


def windows(now: datetime | None = None) -> Windows:
    now = now or datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Windows(day, day.replace(day=1), now)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


class Admission:
    def __init__(self, catalog: Catalog, store: Store, config: AdmissionConfig) -> None:
        self.catalog = catalog
        self.store = store
        self.config = config

    async def budget_of(self, username: str) -> Budget:
        """The user's budget: the admin's override (on the user's row) field by field,
        else the defaults."""
        user = await self.store.users.get(username)
        default = self.config.budget
        if user is None:
            return default
        tokens, usd = user.budget_tokens_per_day, user.budget_usd_per_month
        return Budget(
            tokens if tokens is not None else default.tokens_per_day,
            usd if usd is not None else default.usd_per_month,
        )

    async def usage(self, username: str) -> tuple[Usage, Budget]:
        return await self.store.budgets.usage(username, windows()), await self.budget_of(username)

    async def admit(
        self,
        who: Identity,
        data: AiOptions,
        message: str,
        conversation_id: int | None,
        room_id: str | None,
        before: Before = LATEST,
    ) -> Plan:
        """Raise the error that refuses the reply to ``message``, or reserve it and
        return its plan (creating the conversation when ``conversation_id`` is None).
        The model sees the turns of the branch ``before`` names, then ``message``."""
        conv = await self.conversation(who, conversation_id, room_id)
        head = [ChatTurn("system", data.system_prompt)] if data.system_prompt else []
        needed = count_prompt_tokens([*head, ChatTurn("user", message)])
        if needed > self.config.context_tokens:
            raise InvalidMessage(
                f"the message and system prompt are about {needed} tokens; the limit is "
                f"AI_CONTEXT_TOKENS={self.config.context_tokens}",
                details=[
                    {
                        "field": "message",
                        "error": "too long",
                        "limit": self.config.context_tokens,
                        "tokens": needed,
                    }
                ],
            )
        history = []
        if conv is not None and before is not None:
            history = await self.store.conversations.branch(
                conv.id, None if isinstance(before, str) else before
            )
        earlier = [
            ChatTurn(t.role, t.content)  # type: ignore[arg-type]
            for t in history
            if t.role in ("user", "assistant")
        ]
        turns = trim_context(data.system_prompt, earlier, message, self.config.context_tokens)
        model, fell_back = self.catalog.choose(data.model_preference)
        models = self.catalog.chain(model)
        caps = {
            m: min(data.max_tokens or self.catalog.max_output(m), self.catalog.max_output(m))
            for m in models
        }
        prompt = count_prompt_tokens(turns)
        claim = Claim(
            who.username,
            conv.id if conv else None,
            prompt + max(caps.values()),
            max(self.catalog.prices.cost_usd(m, prompt, caps[m]) for m in models),
            self.config.node_id,
        )
        reply_id = await self._reserve(claim)
        if conv is None:
            conv = await self.store.conversations.create(
                who.username, conversation_title(message), room_id
            )
            await self.store.budgets.attach(reply_id, conv.id)
        return Plan(
            who,
            conv,
            room_id,
            turns,
            models,
            fell_back,
            caps,
            data.temperature,
            prompt,
            reply_id,
            history[-1].id if history else None,
        )

    async def conversation(
        self, who: Identity, conversation_id: int | None, room_id: str | Literal["its own"] | None
    ) -> ConversationRecord | None:
        """The caller's conversation of that id (None for None): NOT_FOUND; someone
        else's is FORBIDDEN, and so is one that started in another room than
        ``room_id`` (or outside rooms, or in a deleted room of the same id): its turns
        never feed a reply elsewhere. ``"its own"`` accepts the conversation's room
        while that room lives."""
        if conversation_id is None:
            return None
        conv = await self.store.conversations.get(conversation_id)
        if conv is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        if conv.owner != who.username:
            raise Forbidden(f"conversation {conversation_id} belongs to someone else")
        same_room = room_id == "its own" or conv.room_id == room_id
        if not same_room or not await self._room_outlived(conv):
            raise Forbidden(
                f"conversation {conversation_id} belongs to "
                + (f"room '{conv.room_id}'" if conv.room_id else "no room")
                + "; start a new conversation here"
            )
        return conv

    async def _room_outlived(self, conv: ConversationRecord) -> bool:
        """The conversation's room is the row it started in, not a later one that took
        its id after a delete."""
        if conv.room_id is None:
            return True
        room = await self.store.rooms.get(conv.room_id)
        return room is not None and _utc(room.created_at) <= _utc(conv.created_at)

    async def _reserve(self, claim: Claim) -> int:
        budget = await self.budget_of(claim.username)
        now = windows()
        lease = now.now + timedelta(seconds=self.config.lease_seconds)
        result = await self.store.budgets.reserve(
            claim, budget, self.config.max_concurrent_per_user, now, lease
        )
        if isinstance(result, int):
            return result
        if result == "concurrency":
            raise RateLimited(
                f"you have {self.config.max_concurrent_per_user} AI replies running "
                "(AI_MAX_CONCURRENT_PER_USER): wait for one to finish or cancel it"
            )
        if result == "conversation":
            raise RateLimited(
                f"a reply is already being written in conversation {claim.conversation_id}: "
                "wait for it to finish or cancel it",
                conversation_id=claim.conversation_id,
            )
        limit: float | None
        asked: float
        if result == "tokens":
            limit, asked, reset = budget.tokens_per_day, claim.tokens, now.day_start + timedelta(1)
            what = f"{asked} tokens"
            window = "daily token budget"
        else:
            limit, asked, reset = budget.usd_per_month, claim.usd, _next_month(now.month_start)
            what = f"{asked:.6f} USD"
            window = "monthly USD budget"
        if limit is not None and asked > limit:
            raise BudgetExceeded(
                f"this request may use up to {what}, more than your whole {window} "
                f"({limit}): ask for fewer max_tokens or a shorter message"
            )
        retry_after = max(1, int((reset - now.now).total_seconds() + 0.999))
        raise BudgetExceeded(
            f"your {window} ({limit}) does not cover this request (up to {what}) on top of "
            "what you used and what your running replies hold",
            retry_after=retry_after,
        )
