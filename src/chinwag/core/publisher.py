"""The outbound half of delivery: everything this process sends to connections
other than the one that asked goes onto the broker channel of a room or a user,
behind a routing header (``envelope.py``), encoded once.

Persist, then publish: a stored event is already in the store when it is
published, so when the broker is unreachable the message is delivered to this
process's connections only and other processes recover it from the store."""

from __future__ import annotations

import logging

from chinwag.broker.base import BrokerUnavailable, OnMessage, PubSub
from chinwag.core.envelope import (
    CHUNK,
    CONTROL,
    DIRECT,
    EPHEMERAL,
    STORED,
    Envelope,
    room_channel,
    user_channel,
)
from chinwag.core.leases import Lease

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, broker: PubSub, local: OnMessage) -> None:
        self.broker = broker
        self._local = local  # delivers to this process while the broker is away
        self._broker_down = False  # the last publish failed (log the outage once)

    async def publish_stored(
        self,
        room_id: str,
        seq: int,
        text: str,
        exclude: str | None = None,
        stream: object = None,
    ) -> None:
        """``stream``: the AI reply ``text`` completes (``Hub._to_room`` strips its content
        for connections that heard the reply whole)."""
        await self._publish(
            room_channel(room_id), Envelope(STORED, text, room_id, seq, exclude, stream)
        )

    async def publish_ephemeral(
        self, room_id: str, text: str, exclude: str | None = None, lease: Lease | None = None
    ) -> None:
        """``lease``: the state this frame starts or ends (``leases.py``)."""
        key = lease.pack() if lease is not None else None
        await self._publish(
            room_channel(room_id), Envelope(EPHEMERAL, text, room_id, None, exclude, key)
        )

    async def publish_chunk(
        self, room_id: str | None, username: str, key: object, text: str, first: bool = False
    ) -> None:
        """A piece of AI reply ``key``; ``first`` marks the reply's first piece (seq 0)."""
        channel = room_channel(room_id) if room_id else user_channel(username)
        seq = 0 if first else None
        await self._publish(channel, Envelope(CHUNK, text, room_id, seq, None, key))

    async def send_user(self, username: str, text: str) -> None:
        """A frame for every connection of ``username``, wherever it is."""
        await self._publish(user_channel(username), Envelope(DIRECT, text))

    async def control_user(self, username: str, command: str, room_id: str, seq: int) -> None:
        await self._publish(user_channel(username), Envelope(CONTROL, command, room_id, seq))

    async def control_room(self, room_id: str, command: str, text: str) -> None:
        await self._publish(
            room_channel(room_id), Envelope(CONTROL, text, room_id, None, None, command)
        )

    async def _publish(self, channel: str, envelope: Envelope) -> None:
        payload = envelope.pack()
        try:
            await self.broker.publish(channel, payload)
        except BrokerUnavailable as exc:
            # Persist-then-publish: the event is stored; other processes recover it
            # with a resync when the broker returns. Deliver here meanwhile.
            if not self._broker_down:
                log.warning("broker unreachable (%s): delivering locally only", exc)
            self._broker_down = True
            self._local(channel, payload)
        else:
            self._broker_down = False
