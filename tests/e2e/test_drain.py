"""Graceful drain and rolling restarts (SPEC §11).

SIGTERM: the process stops accepting, closes its sockets with 1012 at once (clients
reconnect elsewhere), lets running AI replies finish and be stored within
DRAIN_TIMEOUT, and exits 0. Restarting every process of a cluster in turn, under
traffic, with clients that reconnect and resend what was not confirmed (same
``message_id``), loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from chinwag.client import ChatClient, Closed
from tests.e2e.ai_helpers import ai, is_done
from tests.e2e.cluster_helpers import cluster_env, start_cluster
from tests.e2e.rooms_helpers import chat, joined
from tests.e2e.test_cluster_faults import chats, first_seen, stored_chats
from tests.support import Server, User

DRAIN_TIMEOUT = 20
QUESTION = " ".join(f"word{i}" for i in range(40))


async def _reply(srv: Server, user: User, room: str) -> dict[str, Any]:
    history = (await srv.get(f"/api/v1/ws/rooms/{room}/messages", user)).json()["messages"]
    replies = [e for e in history if e["type"] == "chat" and e["data"]["role"] == "assistant"]
    assert len(replies) == 1, history
    return dict(replies[0]["data"])


async def test_sigterm_during_a_streaming_ai_reply_closes_with_1012_and_stores_it_whole(
    start_server: Callable[..., Awaitable[Server]], name: Callable[[str], str]
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY=0.05, DRAIN_TIMEOUT=DRAIN_TIMEOUT)
    user = await srv.user(name("u"))
    # The same question uninterrupted first: the offline model's answer is deterministic.
    calm = name("calm")
    client = await joined(srv, user, calm, "shared")
    await client.send(ai(QUESTION, room_id=calm))
    await client.expect("chat", is_done, timeout=30)
    whole = (await _reply(srv, user, calm))["content"]

    room = name("drain")
    client = await joined(srv, user, room, "shared")
    await client.send(ai(QUESTION, room_id=room))
    await client.expect("chat", lambda f: f["data"].get("streaming") is True, timeout=30)
    # stop() kills the process if it is not gone within DRAIN_TIMEOUT: 0 means it
    # exited by itself, in time.
    assert await srv.stop(signal.SIGTERM, timeout=DRAIN_TIMEOUT) == 0, srv.log
    assert await client.wait_closed() == 1012
    assert not any(
        is_done(f)
        for f in client.frames
        if f and f.get("type") == "chat" and f.get("room_id") == room
    )

    await srv.start()
    stored = await _reply(srv, user, room)
    assert stored["content"] == whole and stored["done"] is True
    assert "cancelled" not in stored and "error" not in stored


@dataclass
class Roamer:
    """A user's client that, when its process closes it, connects to another live
    process of the cluster (as a load balancer would send it) and catches up."""

    cluster: list[Server]
    user: User
    room: str
    clients: list[ChatClient] = field(default_factory=list)

    @property
    def client(self) -> ChatClient:
        return self.clients[-1]

    async def connect(self, first: Server) -> None:
        self.clients.append(await joined(first, self.user, self.room))

    async def reconnect(self) -> None:
        seen = [seq for c in self.clients for seq, _ in chats(c, self.room)]
        while True:
            for srv in self.cluster:
                if srv.proc is None or srv.proc.poll() is not None:
                    continue
                with contextlib.suppress(OSError, Closed, ConnectionClosed, TimeoutError):
                    client = await srv.connect(self.user)
                    await client.send(
                        {"type": "sync", "data": {"rooms": {self.room: max(seen, default=0)}}}
                    )
                    await client.expect("sync")
                    self.clients.append(client)
                    return
            await asyncio.sleep(0.05)

    def received(self) -> list[tuple[int, str]]:
        return first_seen([item for c in self.clients for item in chats(c, self.room)])


async def _send_until(sender: Roamer, stop: asyncio.Event, sent: dict[int, str]) -> None:
    """Each message after the previous one's confirmation, until ``stop``; an
    unconfirmed one is sent again, with the same message_id, after a reconnect."""
    i = 0
    while not stop.is_set():
        content, message_id = f"m{i}", f"m-{i}"
        while True:
            try:
                await sender.client.send(chat(sender.room, content, message_id))
                done = await sender.client.expect(
                    "delivery_confirmation",
                    lambda f, m=message_id: (  # type: ignore[misc]
                        f["data"]["message_id"] == m and "recipient" not in f["data"]
                    ),
                    timeout=20,
                )
                break
            except (Closed, ConnectionClosed):
                await sender.reconnect()
        sent[done["data"]["seq"]] = content
        i += 1


async def test_rolling_restart_of_every_process_under_traffic_loses_and_duplicates_nothing(
    pg_url: str, start_server: Callable[..., Awaitable[Server]], name: Callable[[str], str]
) -> None:
    cluster = await start_cluster(start_server, 3, cluster_env(pg_url))
    room = name("rolling")
    owner = await cluster[0].user(name("o"))
    await (await joined(cluster[0], owner, room, "shared")).close()
    sender = Roamer(cluster, await cluster[0].user(name("s")), room)
    readers = [Roamer(cluster, await cluster[0].user(name("r")), room) for _ in range(2)]
    await sender.connect(cluster[0])
    for reader, srv in zip(readers, cluster[1:], strict=True):
        await reader.connect(srv)

    async def follow(reader: Roamer) -> None:
        while True:
            await reader.client.wait_closed(timeout=3600)
            await reader.reconnect()

    sent: dict[int, str] = {}
    done = asyncio.Event()
    following = [asyncio.create_task(follow(r)) for r in readers]
    sending = asyncio.create_task(_send_until(sender, done, sent))
    try:
        for srv in cluster:  # one at a time, as a deploy would, under traffic
            before = len(sent)
            async with asyncio.timeout(30):
                while len(sent) < before + 20:
                    await asyncio.sleep(0.01)
            assert await srv.stop(signal.SIGTERM, timeout=DRAIN_TIMEOUT) == 0, srv.log
            await srv.start()
        done.set()
        async with asyncio.timeout(60):
            await sending
    finally:
        sending.cancel()
        for task in following:
            task.cancel()
        await asyncio.gather(sending, *following, return_exceptions=True)

    # Every process was restarted under each of them.
    assert len(sender.clients) > 1 and all(len(r.clients) > 1 for r in readers)
    stored = await stored_chats(cluster[0], room, owner)
    assert sorted(stored.values(), key=lambda c: int(c[1:])) == [f"m{i}" for i in range(len(sent))]
    assert sent == stored  # every message stored once, and confirmed with its seq
    expected = sorted(stored.items())
    for reader in readers:
        async with asyncio.timeout(20):
            while len(reader.received()) < len(expected):
                await asyncio.sleep(0.05)
        assert reader.received() == expected
