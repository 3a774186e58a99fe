"""Helpers for the tests of edit, delete, react, reply, mention and search."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import asyncpg

from chinwag.client import ChatClient
from tests.e2e.rooms_helpers import chat
from tests.support import Server, User


async def room_of(srv: Server, owner: User, room: str, *others: User) -> list[ChatClient]:
    """A shared room with ``owner`` and ``others`` in it, each connected once; every
    client has seen everyone's join."""
    clients = [await srv.connect(owner, room_id=room, room_type="shared")]
    await clients[0].expect("join_room")
    for user in others:
        client = await srv.connect(user, room_id=room)
        await client.expect("join_room")
        clients.append(client)
    return clients


async def say(client: ChatClient, room: str, text: str, **data: Any) -> dict[str, Any]:
    """Send a chat (no AI unless asked); its delivery confirmation."""
    mid = uuid.uuid4().hex
    await client.send(chat(room, text, mid, **data))
    return await client.expect(
        "delivery_confirmation", lambda f: f["data"].get("message_id") == mid
    )


async def act(client: ChatClient, kind: str, room: str, **data: Any) -> dict[str, Any]:
    """Send an edit_message, delete_message or react frame; its answer (a
    delivery_confirmation or an error, both carrying the frame's message_id)."""
    mid = uuid.uuid4().hex
    await client.send({"type": kind, "room_id": room, "message_id": mid, "data": data})
    return await client.expect(
        None,
        lambda f: (
            f["type"] in ("delivery_confirmation", "error") and f["data"].get("message_id") == mid
        ),
    )


def about(message_id: int):  # type: ignore[no-untyped-def]
    return lambda f: f["data"].get("message_id") == message_id


async def history(srv: Server, user: User, room: str, **params: Any) -> list[dict[str, Any]]:
    r = await srv.get(f"/api/v1/ws/rooms/{room}/messages", user, params=params)
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["messages"]
    return messages


async def stored_rows_containing(database_url: str, needle: str) -> list[str]:
    """Every row of every table (as text) that contains ``needle``. On SQLite the
    full-text index's own b-tree pages are left out: they hold no rows of text (what
    the index matches after a deletion is checked through search)."""
    found: list[str] = []
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split(":///", 1)[1]) as db:
            tables = [
                t
                for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if not t.startswith(("sqlite_", "room_events_fts"))
            ]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    if needle in repr(row):
                        found.append(f"{table}: {row!r}")
        return found
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            for row in await conn.fetch(f'SELECT t::text AS row FROM "{table}" t'):
                if needle in row["row"]:
                    found.append(f"{table}: {row['row']}")
    finally:
        await conn.close()
    return found
