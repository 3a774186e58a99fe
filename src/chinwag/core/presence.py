"""Who is connected, across every process, kept in the broker's expiring sets.

Entries expire unless refreshed (``refresh`` runs every ttl/3), so a process that
dies without cleaning up vanishes from every list within ``ttl`` seconds; closing a
connection removes its entries at once."""

from __future__ import annotations

from chinwag.broker.base import Broker
from chinwag.core.session import Session

SEP = "/"
ONLINE = "online"


def _conns(username: str) -> str:
    return f"conns:{username}"


def _room(room_id: str) -> str:
    return f"participants:{room_id}"


class Presence:
    def __init__(self, broker: Broker, ttl: float) -> None:
        self.broker = broker
        self.ttl = ttl

    async def connections_of(self, username: str) -> int:
        return len(await self.broker.set_members(_conns(username)))

    async def connect(self, session: Session) -> bool:
        """Register the connection; True if it is the user's first one anywhere."""
        before = await self.broker.set_members(_conns(session.username))
        await self.broker.set_add(_conns(session.username), session.id, self.ttl)
        await self.broker.set_add(ONLINE, session.username + SEP + session.id, self.ttl)
        return not [c for c in before if c != session.id]

    async def disconnect(self, session: Session) -> bool:
        """Forget the connection; True if the user has no other one anywhere."""
        await self.broker.set_remove(_conns(session.username), session.id)
        await self.broker.set_remove(ONLINE, session.username + SEP + session.id)
        return not await self.broker.set_members(_conns(session.username))

    async def enter(self, room_id: str, session: Session) -> None:
        await self.broker.set_add(_room(room_id), session.username + SEP + session.id, self.ttl)

    async def exit(self, room_id: str, session: Session) -> None:
        await self.broker.set_remove(_room(room_id), session.username + SEP + session.id)

    async def participants(self, room_id: str) -> list[str]:
        """Usernames with at least one live connection subscribed to the room."""
        entries = await self.broker.set_members(_room(room_id))
        return sorted({entry.rsplit(SEP, 1)[0] for entry in entries})

    async def online_users(self) -> list[str]:
        """Usernames with at least one live connection anywhere."""
        entries = await self.broker.set_members(ONLINE)
        return sorted({entry.rsplit(SEP, 1)[0] for entry in entries})

    async def refresh(self, sessions: list[Session]) -> None:
        for s in sessions:
            await self.broker.set_add(_conns(s.username), s.id, self.ttl)
            await self.broker.set_add(ONLINE, s.username + SEP + s.id, self.ttl)
            for room_id in list(s.rooms):
                await self.broker.set_add(_room(room_id), s.username + SEP + s.id, self.ttl)
