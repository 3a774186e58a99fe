"""Routes what arrives from the broker to this process's connections.

Invariant: only the hub touches other connections' outboxes. Everything that goes
to more than one connection, or to a connection of another user, is published on
the broker (``publisher.py``) and arrives here through ``on_message`` — the same
path for one process and for many. Stored events are published after they are
committed; each session's ``RoomSequence`` (``sequencer.py``) turns "maybe
duplicated, maybe out of order, maybe lost" into "exactly once, in order", and the
hub fills the gaps it reports from the store.

Events published by different processes often arrive slightly out of order (each
publishes after its own commit), so a gap first waits up to ``reorder_grace`` for
the missing event to come through the broker; only a gap that stays open is read
from the store. Without that wait, every concurrent sender on another process
turned into one store read per local session."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from chinwag.broker.base import PubSub
from chinwag.core import metrics
from chinwag.core.envelope import (
    CHUNK,
    CONTROL,
    EPHEMERAL,
    ROOM,
    STORED,
    Envelope,
    parse_channel,
    room_channel,
    user_channel,
)
from chinwag.core.leases import Lease, Leases
from chinwag.core.outbox import Kind, OutFrame
from chinwag.core.publisher import Publisher
from chinwag.core.sequencer import DONE, RETRY, RoomSequence
from chinwag.core.session import Session
from chinwag.protocol.codec import without_content

log = logging.getLogger(__name__)


class HubDelegate(Protocol):
    """What the hub needs from the service that owns it: store reads for gap filling
    and the membership commands that arrive on a user's channel."""

    async def fetch_after(
        self, session: Session, room_id: str, after_seq: int
    ) -> list[tuple[int, str | None]]:
        """Stored events of ``room_id`` after ``after_seq`` as ``session`` sees them:
        [(seq, frame text, or None for an event it must skip)], at most PAGE."""

    async def control(self, session: Session, command: str, room_id: str, seq: int) -> None:
        """Run ``subscribe`` / ``unsubscribe`` of ``room_id`` (from ``seq``) for ``session``."""


class Hub:
    def __init__(self, broker: PubSub, delegate: HubDelegate, reorder_grace: float = 0.25) -> None:
        self.broker = broker
        self._delegate = delegate
        self.reorder_grace = reorder_grace
        # (session id, room) -> set on every stored event arriving while that gap waits
        self._reordering: dict[tuple[str, str], asyncio.Event] = {}
        self.sessions: dict[str, Session] = {}
        self.by_user: dict[str, set[Session]] = {}
        self.rooms: dict[str, set[Session]] = {}
        #: room -> username -> that user's sessions here subscribed to it (who is in a
        #: room, without walking every connection of it)
        self.room_users: dict[str, dict[str, int]] = {}
        #: Channels of other parts of core (not rooms or users): channel -> handler.
        self.listeners: dict[str, Callable[[bytes], None]] = {}
        self.emptied = asyncio.Event()
        #: leased ephemeral states shown here (typing): ended here if their origin dies
        self.leases = Leases(self._lapsed)
        # The outbound half. Its methods are also the hub's (publish_stored, send_user…)
        # so callers holding the hub publish without passing through it.
        self.publisher = Publisher(broker, self.on_message)
        self.publish_stored = self.publisher.publish_stored
        self.publish_ephemeral = self.publisher.publish_ephemeral
        self.publish_chunk = self.publisher.publish_chunk
        self.send_user = self.publisher.send_user
        self.control_user = self.publisher.control_user
        self.control_room = self.publisher.control_room

    # ---- registry ---------------------------------------------------------

    async def add(self, session: Session) -> None:
        self.sessions[session.id] = session
        metrics.CONNECTIONS.inc()
        mine = self.by_user.setdefault(session.username, set())
        mine.add(session)
        if len(mine) == 1:
            await self.broker.subscribe(user_channel(session.username))

    async def remove(self, session: Session) -> None:
        if self.sessions.pop(session.id, None) is not None:
            metrics.CONNECTIONS.dec()
        self.emptied.set()
        for room_id in list(session.rooms):
            await self.leave(session, room_id)
        mine = self.by_user.get(session.username)
        if mine is not None:
            mine.discard(session)
            if not mine:
                del self.by_user[session.username]
                await self.broker.unsubscribe(user_channel(session.username))

    async def join(self, session: Session, room_id: str, after_seq: int) -> int:
        """Subscribe ``session`` to the room, send it every stored event after
        ``after_seq`` (the offline queue), then live ones, in order; returns the last
        seq sent. Subscribed before the one store read, so what is published while
        it runs is held by the sequence and released in order after it."""
        sequence = session.rooms.get(room_id)
        if sequence is not None:
            return sequence.seq
        sequence = session.rooms[room_id] = RoomSequence(after_seq, session.outbox.capacity)
        members = self.rooms.setdefault(room_id, set())
        members.add(session)
        users = self.room_users.setdefault(room_id, {})
        users[session.username] = users.get(session.username, 0) + 1
        if len(members) == 1:
            await self.broker.subscribe(room_channel(room_id))
        sequence.begin_catch_up()
        await self._catch_up(session, room_id)
        return sequence.seq

    async def leave(self, session: Session, room_id: str) -> None:
        session.rooms.pop(room_id, None)
        waiting = self._reordering.pop((session.id, room_id), None)
        if waiting is not None:
            waiting.set()  # its catch-up finds the room gone and ends
        members = self.rooms.get(room_id)
        if members is None or session not in members:
            return
        members.discard(session)
        users = self.room_users[room_id]
        left = users[session.username] - 1
        if left:
            users[session.username] = left
        else:
            del users[session.username]
        if not members:
            del self.rooms[room_id]
            del self.room_users[room_id]
            self.leases.forget_room(room_id)
            await self.broker.unsubscribe(room_channel(room_id))

    # ---- receiving ------------------------------------------------------------

    def on_message(self, channel: str, payload: bytes) -> None:
        listener = self.listeners.get(channel)
        if listener is not None:
            listener(payload)
            return
        try:
            env = Envelope.unpack(payload)
        except Exception:
            log.exception("dropping malformed broker message on %s", channel)
            return
        scope, name = parse_channel(channel)
        if scope == ROOM:
            began = time.perf_counter()
            self._to_room(env)
            metrics.FANOUT.observe(time.perf_counter() - began)
        else:
            self._to_user(name, env)

    def _to_room(self, env: Envelope) -> None:
        assert env.room_id is not None
        targets = self.rooms.get(env.room_id)
        if not targets:
            return
        frame = OutFrame(env.text)
        if env.kind == STORED:
            assert env.seq is not None
            room_id, seq, text, exclude = env.room_id, env.seq, env.text, env.exclude
            waits, stream = self._reordering, env.key
            if exclude is None and not waits and stream is None:
                # The common case, kept to one call per recipient (runs for every
                # recipient of every room event).
                gaps = [s for s in list(targets) if s.offer_stored(room_id, seq, text, frame)]
                for s in gaps:
                    self._start_catch_up(s, room_id, reorder=True)
                return
            short: OutFrame | None = None
            for s in list(targets):
                mine = frame
                if stream is not None and s.heard_whole(stream):
                    # An AI completion (whole in ``text``) to a connection that heard the
                    # reply from its first chunk: content "", as the contract says. One
                    # that came later, or joined the room mid-reply, gets the whole text.
                    short = short or OutFrame(without_content(text))
                    mine = short
                skip = exclude is not None and s.username == exclude
                if s.offer_stored(room_id, seq, None if skip else mine.text, mine):
                    self._start_catch_up(s, room_id, reorder=True)
                    continue
                if waits:
                    arrived = waits.get((s.id, room_id))
                    if arrived is not None:
                        arrived.set()
        elif env.kind == EPHEMERAL:
            lease = Lease.unpack(env.key) if env.key is not None else None
            if lease is not None and not self.leases.offer(env.room_id, lease, env.exclude):
                return  # a renewal of what is shown, or the end of what already lapsed
            self._ephemeral(targets, env.text, env.exclude, frame)
        elif env.kind == CHUNK:
            first, room_id = env.seq == 0, env.room_id
            for s in list(targets):
                sequence = s.rooms.get(room_id)
                if sequence is not None and sequence.catching_up:
                    # Its backlog (the question among it) is still on the way: a chunk
                    # now would overtake it. Having missed a chunk, it gets the whole
                    # answer in the completion.
                    s.skip_chunk(env.key)
                    continue
                s.send_chunk(env.key, env.text, frame, first=first)
        elif env.kind == CONTROL and env.key == "deleted":
            for s in list(targets):
                s.send_text(env.text)
                s.spawn(self.leave(s, env.room_id))

    def _ephemeral(
        self, targets: set[Session], text: str, exclude: str | None, frame: OutFrame
    ) -> None:
        for s in list(targets):
            if s.username != exclude:
                s.send_text(text, Kind.EPHEMERAL, frame)

    def _lapsed(self, room_id: str, end: str, exclude: str | None) -> None:
        targets = self.rooms.get(room_id)
        if targets:
            self._ephemeral(targets, end, exclude, OutFrame(end))

    def _to_user(self, username: str, env: Envelope) -> None:
        for s in list(self.by_user.get(username, ())):
            if env.kind == CONTROL:
                if env.room_id is not None and env.seq is not None:
                    s.spawn(self._delegate.control(s, env.text, env.room_id, env.seq))
            elif env.kind == CHUNK:
                s.send_chunk(env.key, env.text, first=env.seq == 0)
            else:
                s.send_text(env.text)

    def resync_all(self) -> None:
        """The broker may have lost messages: every session re-reads its rooms."""
        for s in list(self.sessions.values()):
            for room_id, sequence in s.rooms.items():
                waiting = self._reordering.pop((s.id, room_id), None)
                if waiting is not None:
                    waiting.set()  # stop waiting for the broker: read the store now
                elif sequence.begin_catch_up():
                    s.spawn(self._catch_up(s, room_id))

    # ---- gap filling ------------------------------------------------------------

    def _start_catch_up(self, session: Session, room_id: str, *, reorder: bool = False) -> None:
        sequence = session.rooms.get(room_id)
        if sequence is None:
            return
        sequence.begin_catch_up()  # already begun when a live event found the gap
        arrived = None
        if reorder:  # registered now, so arrivals and resyncs before the task runs count
            arrived = asyncio.Event()
            arrived.set()  # the task looks once at start
            self._reordering[(session.id, room_id)] = arrived
        session.spawn(self._catch_up(session, room_id, arrived))

    async def _reordered(self, session: Session, room_id: str, arrived: asyncio.Event) -> bool:
        """Wait up to ``reorder_grace`` for the broker to bring what a gap misses;
        True when the gap closed that way (no store read needed)."""
        key = (session.id, room_id)
        try:
            async with asyncio.timeout(self.reorder_grace):
                while True:
                    await arrived.wait()
                    arrived.clear()
                    if self._reordering.get(key) is not arrived:
                        return False  # resync_all asked for the store
                    if session.take_pending(room_id):
                        return True
        except TimeoutError:
            return False
        finally:
            if self._reordering.get(key) is arrived:
                del self._reordering[key]

    async def _catch_up(
        self, session: Session, room_id: str, arrived: asyncio.Event | None = None
    ) -> None:
        """Fill the room's gap: the sequence decides, this reads, sends and waits."""
        sequence = session.rooms.get(room_id)
        if sequence is None:
            return
        try:
            if arrived is not None and await self._reordered(session, room_id, arrived):
                return
            while session.rooms.get(room_id) is sequence:
                page = await self._delegate.fetch_after(session, room_id, sequence.seq)
                for seq, text in sequence.fresh(page):
                    if session.rooms.get(room_id) is not sequence:
                        return  # left the room meanwhile
                    sequence.advance(seq)
                    if text:
                        await session.send_paced(text, (room_id, seq))
                outcome = sequence.page_done(len(page))
                session.send_released(room_id, outcome.released)
                if outcome.skipped is not None:
                    log.warning(
                        "%s: seq %s..%s never became readable; skipped", room_id, *outcome.skipped
                    )
                if outcome.step == DONE:
                    return
                if outcome.step == RETRY:
                    # Committed (it was published after its commit) but not yet
                    # visible here: look again shortly.
                    await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("catch-up of %s for %s failed", room_id, session.username)
            sequence.abort()
