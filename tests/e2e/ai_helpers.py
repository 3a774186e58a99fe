"""Shared by the AI end-to-end modules: frames, predicates and servers."""

from __future__ import annotations

import uuid
from typing import Any

from tests.ai.fake_openai import FakeOpenAI
from tests.support import Server, StartServer

REDIS_URL = "redis://127.0.0.1:6379/0"


def ai(text: str, **data: Any) -> dict[str, Any]:
    message_id = data.pop("message_id", None)
    frame: dict[str, Any] = {"type": "chat", "data": {"message": text, **data}}
    if "room_id" in data:
        frame["room_id"] = frame["data"].pop("room_id")
    if message_id:
        frame["message_id"] = message_id
    return frame


def is_done(frame: dict[str, Any]) -> bool:
    return frame["data"].get("done") is True


def outcome(frame: dict[str, Any]) -> bool:
    """A reply's end as its requester sees it: the completion or an error."""
    return frame["type"] == "error" or (frame["type"] == "chat" and is_done(frame))


async def openai_server(start_server: StartServer, fake: FakeOpenAI, **settings: Any) -> Server:
    srv: Server = await start_server(
        AI_PROVIDER="openai",
        OPENAI_BASE_URL=fake.base_url,
        OPENAI_API_KEY="sk-test",
        DEFAULT_MODEL="ok",
        AI_MAX_RETRIES=0,
        **settings,
    )
    return srv


def cluster(database_url: str, **extra: Any) -> dict[str, Any]:
    """Settings two processes share to be one cluster (their own Redis key prefix)."""
    return {
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}:",
        **extra,
    }
