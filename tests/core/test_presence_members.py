"""Participants are the connected users who are still members: a user who just left
keeps a presence entry until the unsubscribe reaches their connections, which may be
after the other members heard the ``left`` event and asked who is here."""

from __future__ import annotations

from chinwag.broker.memory import MemoryBroker
from chinwag.core.hub import Hub
from chinwag.core.presence import Presence


async def test_participants_leave_out_a_connected_user_who_is_no_longer_a_member() -> None:
    broker = MemoryBroker()
    hub = Hub(broker, None)  # type: ignore[arg-type]  # only presence is asked here
    presence = Presence(broker, hub, 30)
    for entry in ("alice/c1", "bob/c2", "bob/c3"):
        await broker.set_add("participants:r", entry, 30)
    assert await presence.participants("r", ["alice", "bob"]) == ["alice", "bob"]
    assert await presence.participants("r", ["alice"]) == ["alice"]
    assert await presence.participants("r", ["carol"]) == []
