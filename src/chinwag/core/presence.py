"""Who is connected, across every process, kept in the broker's expiring sets.

Entries expire unless refreshed (``refresh`` runs every ttl/3), so a process that
dies without cleaning up vanishes from every list within ``ttl`` seconds; closing a
connection removes its entries at once. While the broker is unreachable, answers
fall back to what this process knows (its own connections) and writes are skipped:
the next refresh after the broker returns puts every live entry back."""

from __future__ import annotations

import logging

from chinwag.broker.base import BrokerUnavailable, ExpiringState
from chinwag.core.hub import Hub
from chinwag.core.session import Session

log = logging.getLogger(__name__)
SEP = "/"
ONLINE = "online"


def _conns(username: str) -> str:
    return f"conns:{username}"


def _room(room_id: str) -> str:
    return f"participants:{room_id}"


class Presence:
    def __init__(
        self, broker: ExpiringState, hub: Hub, ttl: float, single_process: bool = False
    ) -> None:
        self.broker = broker
        self.hub = hub
        self.ttl = ttl
        # With the in-process broker this process sees every connection, so the
        # answer is read off the hub (once per chat: it decides queued_for).
        self.single_process = single_process

    async def connections_of(self, username: str) -> int:
        try:
            return await self.broker.set_count(_conns(username))
        except BrokerUnavailable:
            return len(self.hub.by_user.get(username, ()))

    async def connect(self, session: Session) -> bool:
        """Register the connection; True if it is the user's first one anywhere."""
        try:
            # session.id is new, so any member counted here is another connection
            before = await self.broker.set_count(_conns(session.username))
            await self.broker.set_add_many(
                [(_conns(session.username), session.id), (ONLINE, _entry(session))], self.ttl
            )
            return before == 0
        except BrokerUnavailable:
            return len(self.hub.by_user.get(session.username, ())) <= 1

    async def disconnect(self, session: Session) -> bool:
        """Forget the connection; True if the user has no other one anywhere."""
        try:
            await self.broker.set_remove(_conns(session.username), session.id)
            await self.broker.set_remove(ONLINE, _entry(session))
            return await self.broker.set_count(_conns(session.username)) == 0
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

    async def participants(self, room_id: str, members: list[str]) -> list[str]:
        """Usernames with at least one live connection subscribed to the room, among
        its ``members``: a user who just left may still have a connection that has
        not yet heard of it (the unsubscribe reaches it after the ``left`` event)."""
        here = await self.here(room_id)
        return sorted(here.intersection(members))

    async def here(self, room_id: str) -> set[str]:
        """``participants`` as a set (asked once per chat, to work out queued_for)."""
        if self.single_process:
            return self._here_locally(room_id)
        try:
            return set(await self.broker.set_owners(_room(room_id), SEP))
        except BrokerUnavailable:
            return self._here_locally(room_id)

    def _here_locally(self, room_id: str) -> set[str]:
        return set(self.hub.room_users.get(room_id, ()))

    async def online_users(self) -> list[str]:
        """Usernames with at least one live connection anywhere."""
        try:
            return sorted(await self.broker.set_owners(ONLINE, SEP))
        except BrokerUnavailable:
            return sorted(self.hub.by_user)

    async def refresh(self, sessions: list[Session]) -> None:
        entries: list[tuple[str, str]] = []
        for s in sessions:
            entries += [(_conns(s.username), s.id), (ONLINE, _entry(s))]
            entries += [(_room(room_id), _entry(s)) for room_id in s.rooms]
        try:
            await self.broker.set_add_many(entries, self.ttl)
        except BrokerUnavailable:
            log.warning("broker unreachable: presence refresh skipped")


def _entry(session: Session) -> str:
    return session.username + SEP + session.id
