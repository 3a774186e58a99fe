"""What a process does on a timer rather than in answer to a frame: refresh its
presence and publish its stats, persist delivery cursors and drop abandoned
uploads, send the heartbeat, and keep trying a broker that was down at start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from chinwag.broker.base import BrokerUnavailable, ExpiringState, PubSub
from chinwag.core.events import Events
from chinwag.core.hub import Hub
from chinwag.core.outbox import Kind, OutFrame
from chinwag.core.presence import Presence
from chinwag.core.stats import NodeStats
from chinwag.core.uploads import UploadManager
from chinwag.core.wiring import Limits
from chinwag.protocol import frames
from chinwag.protocol.codec import encode

log = logging.getLogger(__name__)


class Upkeep:
    def __init__(
        self,
        pubsub: PubSub,
        state: ExpiringState,
        hub: Hub,
        presence: Presence,
        events: Events,
        uploads: UploadManager,
        stats: NodeStats,
        limits: Limits,
        node_id: str,
    ) -> None:
        self.pubsub, self.state, self.hub = pubsub, state, hub
        self.presence, self.events, self.uploads = presence, events, uploads
        self.stats, self.limits, self.node_id = stats, limits, node_id
        self.sent_by_closed = 0  # frames_sent of connections that are gone
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect the broker (or keep trying in the background) and start the timers."""
        self._tasks = []
        try:
            await self.pubsub.start(self.hub.on_message, self.hub.resync_all)
        except BrokerUnavailable as exc:
            log.warning(
                "broker unreachable at start-up (%s): serving this process's "
                "connections and retrying",
                exc,
            )
            self._tasks.append(asyncio.create_task(self._start_broker_later()))
        self._tasks += [
            asyncio.create_task(self._every(self.limits.presence_ttl / 3, self._refresh)),
            asyncio.create_task(self._every(self.limits.cleanup_interval, self.cleanup)),
            asyncio.create_task(self._every(self.limits.heartbeat_interval, self._heartbeat)),
        ]

    async def stop(self) -> None:
        """Cancel the timers and wait for them. A job in the middle of a broker or
        database call can lose the cancellation (seen: a presence refresh on Redis
        at shutdown left a worker waiting forever), so ``_every`` also stops when its
        task is being cancelled, and a timer still running a second later is
        cancelled again."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            while not task.done():
                await asyncio.wait({task}, timeout=1.0)
                task.cancel()
            if not task.cancelled():
                task.exception()  # retrieved: nothing to report at shutdown

    def frames_sent(self) -> int:
        """Every frame written to a client by this process (answers, heartbeats and
        broadcasts alike), closed connections included."""
        return self.sent_by_closed + sum(s.sent for s in self.hub.sessions.values())

    async def publish_stats(self) -> None:
        self.stats.active_connections = len(self.hub.sessions)
        self.stats.messages_sent = self.frames_sent()
        self.stats.uploads_in_progress = await self.uploads.in_progress()
        try:
            await self.state.set_add("nodes", self.node_id, self.limits.presence_ttl)
            await self.state.put(
                f"stats:{self.node_id}",
                encode(self.stats.snapshot()).encode(),
                self.limits.presence_ttl,
            )
        except BrokerUnavailable:
            pass  # the stats endpoint falls back to this node's numbers

    async def cleanup(self) -> None:
        """Persist delivery cursors, drop abandoned uploads."""
        for session in list(self.hub.sessions.values()):
            await self.events.flush_cursors(session)
        await self.uploads.expire()

    async def _start_broker_later(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.pubsub.start(self.hub.on_message, self.hub.resync_all)
            except BrokerUnavailable:
                continue
            log.info("broker reachable again")
            self.hub.resync_all()
            return

    async def _every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.current_task()
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:
                log.exception("periodic job %s failed", getattr(job, "__name__", job))
            if task is not None and task.cancelling():
                return  # cancelled while the job ran, and the job lost the cancellation

    async def _refresh(self) -> None:
        await self.presence.refresh(list(self.hub.sessions.values()))
        await self.publish_stats()

    async def _heartbeat(self) -> None:
        """The guide's ``system`` heartbeat to every connection, framed once."""
        text = encode(frames.heartbeat())
        frame = OutFrame(text)
        for session in list(self.hub.sessions.values()):
            session.send_text(text, Kind.EPHEMERAL, frame)
