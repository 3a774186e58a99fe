"""Who is connected, across every process, kept in the broker's expiring sets.

Entries expire unless refreshed (``refresh`` runs every ttl/3), so a process that
dies without cleaning up vanishes from every list within ``ttl`` seconds; closing a
connection removes its entries at once. While the broker is unreachable, answers
fall back to what this process knows (its own connections) and writes are skipped:
the next refresh after the broker returns puts every live entry back."""

from __future__ import annotations

import logging

from chinwag.broker.base import Broker, BrokerUnavailable
from chinwag.core.hub import Hub
from chinwag.core.session import Session

log = logging.getLogger(__name__)
SEP = "/"
ONLINE = "online"


def _conns(username: str) -> str:
    return f"conns:{username}"


def _room(room_id: str) -> str:
    return f"participants:{room_id}"


def _names(entries: list[str]) -> list[str]:
    return sorted({entry.rsplit(SEP, 1)[0] for entry in entries})


class Presence:
    def __init__(self, broker: Broker, hub: Hub, ttl: float, single_process: bool = False) -> None:
        self.broker = broker
        self.hub = hub
        self.ttl = ttl
        # With the in-process broker this process sees every connection, so the
        # answer is read off the hub (once per chat: it decides queued_for).
        self.single_process = single_process

    async def connections_of(self, username: str) -> int:
        try:
            return len(await self.broker.set_members(_conns(username)))
        except BrokerUnavailable:
            return len(self.hub.by_user.get(username, ()))

    async def connect(self, session: Session) -> bool:
        """Register the connection; True if it is the user's first one anywhere."""
        try:
            before = await self.broker.set_members(_conns(session.username))
            await self.broker.set_add(_conns(session.username), session.id, self.ttl)
            await self.broker.set_add(ONLINE, _entry(session), self.ttl)
            return not [c for c in before if c != session.id]
        except BrokerUnavailable:
            return len(self.hub.by_user.get(session.username, ())) <= 1

    async def disconnect(self, session: Session) -> bool:
        """Forget the connection; True if the user has no other one anywhere."""
        try:
            await self.broker.set_remove(_conns(session.username), session.id)
            await self.broker.set_remove(ONLINE, _entry(session))
            return not await self.broker.set_members(_conns(session.username))
        except BrokerUnavailable:
            return session.username not in self.hub.by_user

    async def enter(self, room_id: str, session: Session) -> None:
        try:
            await self.broker.set_add(_room(room_id), _entry(session), self.ttl)
        except BrokerUnavailable:
            pass  # put back by the first refresh after the broker returns

    async def exit(self, room_id: str, session: Session) -> None:
        try:
            await self.broker.set_remove(_room(room_id), _entry(session))
        except BrokerUnavailable:
            pass  # expires by itself

    async def participants(self, room_id: str) -> list[str]:
        """Usernames with at least one live connection subscribed to the room."""
        if self.single_process:
            return sorted({s.username for s in self.hub.rooms.get(room_id, ())})
        try:
            return _names(await self.broker.set_members(_room(room_id)))
        except BrokerUnavailable:
            return sorted({s.username for s in self.hub.rooms.get(room_id, ())})

    async def online_users(self) -> list[str]:
        """Usernames with at least one live connection anywhere."""
        try:
            return _names(await self.broker.set_members(ONLINE))
        except BrokerUnavailable:
            return sorted(self.hub.by_user)

    async def refresh(self, sessions: list[Session]) -> None:
        try:
            for s in sessions:
                await self.broker.set_add(_conns(s.username), s.id, self.ttl)
                await self.broker.set_add(ONLINE, _entry(s), self.ttl)
                for room_id in list(s.rooms):
                    await self.broker.set_add(_room(room_id), _entry(s), self.ttl)
        except BrokerUnavailable:
            log.warning("broker unreachable: presence refresh skipped")


def _entry(session: Session) -> str:
    return session.username + SEP + session.id
