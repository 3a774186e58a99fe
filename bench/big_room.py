"""The connect path as users really connect: every connection belongs to a user who
is a member of one big room and sends ``join_room`` for it.

``seed_big_room`` writes the room and its members straight into the server's store
(the users never log in, so no password hash each; the harness mints their
WebSocket tokens with the server's known secret). The first ``connecting`` members
are the ones whose tokens the generator cycles through, many connections each."""

from __future__ import annotations

import asyncio
from pathlib import Path

#: The room every connection of the join scenarios sends ``join_room`` for.
ROOM = "bench-big"


async def _seed(url: str, members: int) -> list[tuple[str, int]]:
    from chinwag.protocol.errors import Conflict
    from chinwag.store.sql import SqlStore

    store = SqlStore(url)
    await store.start()
    try:
        users = []
        for i in range(members):
            name = f"member{i}"
            try:
                rec = await store.users.create(name, "!not-a-password-hash")
            except Conflict:  # seeded by an earlier repetition
                got = await store.users.get(name)
                assert got is not None
                rec = got
            users.append((rec.username, rec.id))
        if await store.rooms.get(ROOM) is None:
            await store.rooms.create(ROOM, "Bench big room", "shared", users[0][0])
        for name, _ in users[1:]:
            await store.rooms.add_member(ROOM, name)
        assert len(await store.rooms.members(ROOM)) == members
        return users
    finally:
        await store.close()


def seed_big_room(database: Path, members: int, connecting: int) -> list[tuple[str, int]]:
    """(username, user id) of the first ``connecting`` of ``members`` members of ROOM,
    in the SQLite file ``database``."""
    users = asyncio.run(_seed(f"sqlite+aiosqlite:///{database}", members))
    return users[:connecting]
