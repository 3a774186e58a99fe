"""A cluster under faults: a process SIGKILLed mid-traffic, Redis restarted mid-traffic.

What SPEC §4 and STYLE habit 6 promise: the database is the truth and the broker a
hint, so neither fault loses a stored message; the clients of a dead process recover
on another one with ``sync``; presence of a dead process expires by time; after a
Redis restart the processes reconnect and fill what the broker dropped by themselves.

The Redis test runs its own ``redis-server`` on a free port (no persistence) and
stops it by PID; the machine's Redis on 6379 is never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from chinwag.client import ChatClient, Closed
from tests.e2e.cluster_helpers import (
    PRESENCE_TTL,
    TYPING_TIMEOUT,
    cluster_env,
    eventually,
    participants,
    start_cluster,
)
from tests.e2e.rooms_helpers import chat, joined
from tests.support import Namer, Server, StartServer, free_port, kill


@dataclass
class Sender:
    """Sends chats one after another, each after the previous one's confirmation,
    until stopped; ``sent`` maps every confirmed seq to its content."""

    client: ChatClient
    room: str
    tag: str = "m"
    sent: dict[int, str] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    limit: int = 10_000

    async def run(self) -> None:
        """Ends when stopped, or quietly when the server goes away under it."""
        for i in range(self.limit):
            if self.stop.is_set():
                return
            content, message_id = f"{self.tag}{i}", f"{self.tag}-{i}"
            try:
                await self.client.send(chat(self.room, content, message_id))
                done = await self.client.expect(
                    "delivery_confirmation",
                    lambda f, m=message_id: (  # type: ignore[misc]
                        f["data"]["message_id"] == m and "recipient" not in f["data"]
                    ),
                )
            except (Closed, ConnectionClosed):
                return
            assert done["data"]["status"] == "delivered"
            self.sent[done["data"]["seq"]] = content

    async def confirmed(self, count: int, within: float = 20) -> int:
        """Wait until ``count`` more messages are confirmed; the last seq."""
        target = len(self.sent) + count

        async def enough() -> bool:
            return len(self.sent) >= target

        await eventually(enough, within=within, what=f"{target} confirmed messages")
        return max(self.sent)


def chats(client: ChatClient, room: str) -> list[tuple[int, str]]:
    """(seq, content) of every chat of ``room`` the client received, in arrival order."""
    return [
        (f["seq"], f["data"]["content"])
        for f in client.frames
        if f is not None and f.get("type") == "chat" and f.get("room_id") == room
    ]


async def has_all(client: ChatClient, room: str, sent: dict[int, str]) -> bool:
    return set(sent) <= {seq for seq, _ in chats(client, room)}


async def stored_chats(srv: Server, room: str, user: Any) -> dict[int, str]:
    """Every chat of the room in the store (the history API, paged backwards)."""
    out: dict[int, str] = {}
    path = f"/api/v1/ws/rooms/{room}/messages?limit=500"
    while True:
        page = (await srv.get(path, user)).json()
        out.update(
            {e["seq"]: e["data"]["content"] for e in page["messages"] if e["type"] == "chat"}
        )
        if page["next_before_seq"] is None:
            return out
        path = f"/api/v1/ws/rooms/{room}/messages?limit=500&before_seq={page['next_before_seq']}"


def first_seen(stream: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The stream without repeats (a replay or ``sync`` resends what was seen)."""
    seen: set[int] = set()
    out = []
    for seq, content in stream:
        if seq not in seen:
            seen.add(seq)
            out.append((seq, content))
    return out


# ---- a process dies ------------------------------------------------------------------


async def test_sigkilled_process_loses_nothing_stored_and_its_clients_recover_elsewhere(
    pg_url: str, start_server: StartServer, name: Namer
) -> None:
    survivor, victim = await start_cluster(start_server, 2, cluster_env(pg_url))
    room = name("shared")
    talker, watcher, mover, leaver = [await survivor.user(name()) for _ in range(4)]
    t = await joined(survivor, talker, room, "shared")
    w = await joined(survivor, watcher, room)
    m = await joined(victim, mover, room)
    await joined(victim, leaver, room)
    everyone = sorted(u.username for u in (talker, watcher, mover, leaver))
    assert await participants(survivor, room, talker) == everyone

    # Both processes take messages when one dies: the survivor's talker and the
    # victim's mover send one after another, each after the previous confirmation.
    sender, doomed = Sender(t, room, "s"), Sender(m, room, "v")
    sending = [asyncio.create_task(sender.run()), asyncio.create_task(doomed.run())]
    expiry: asyncio.Task[float] | None = None
    try:
        await sender.confirmed(30)
        await doomed.confirmed(10)
        kill(victim)  # SIGKILL: no close frames, no clean-up, no goodbye on the broker

        async def leaver_gone() -> bool:  # presence expires by time, without the victim
            return leaver.username not in await participants(survivor, room, talker)

        # Entries live PRESENCE_TTL after their last refresh: gone within that, plus slack.
        expiry = asyncio.create_task(
            eventually(
                leaver_gone, within=2 * PRESENCE_TTL, what="the dead process's presence gone"
            )
        )
        await m.wait_closed()
        last_seen = max(seq for seq, _ in chats(m, room))
        back = await survivor.connect(mover)  # the same ws token works on every process
        await back.send({"type": "sync", "data": {"rooms": {room: last_seen}}})
        await back.expect("sync")
        await expiry
        assert await participants(survivor, room, talker) == sorted(
            u.username for u in (talker, watcher, mover)
        )
        await sender.confirmed(30)  # traffic goes on after the recovery
    finally:
        if expiry is not None:
            expiry.cancel()
        sender.stop.set()
        await asyncio.gather(*sending)

    stored = await stored_chats(survivor, room, talker)
    # Every confirmed message is stored (the victim may have stored one more it never
    # confirmed: that one must reach everyone too).
    assert sender.sent.items() <= stored.items() and doomed.sent.items() <= stored.items()
    assert set(stored.values()) - {*sender.sent.values(), *doomed.sent.values()} <= {
        f"v{len(doomed.sent)}"
    }
    expected = sorted(stored.items())
    for client in (t, w):  # the survivor's clients: everything, once, in order
        await eventually(partial(has_all, client, room, stored), what="delivery")
        assert chats(client, room) == expected
    await eventually(lambda: has_all(back, room, stored), what="recovery by sync")
    # Before the kill and after the reconnect, the mover saw everything, in order.
    assert first_seen(chats(m, room) + chats(back, room)) == expected


async def test_typing_set_on_a_sigkilled_process_ends_for_the_others(
    pg_url: str, start_server: StartServer, name: Namer
) -> None:
    survivor, victim = await start_cluster(start_server, 2, cluster_env(pg_url))
    room = name("shared")
    alice, bob = await victim.user(name()), await survivor.user(name())
    a = await joined(victim, alice, room, "shared")
    b = await joined(survivor, bob, room)
    typing = {"type": "typing", "data": {"is_typing": True, "room_id": room}}
    await a.send(typing)
    await b.expect("typing", lambda f: f["data"]["is_typing"] is True)
    # She keeps typing for longer than one lease (1.5 timeouts): the renewals keep
    # it shown on the survivor, without showing it again.
    for _ in range(6):
        await asyncio.sleep(TYPING_TIMEOUT / 2.5)  # a person's keystrokes, not a wait
        await a.send(typing)
    await a.send({"type": "ping"})
    await a.expect("pong")
    assert b.pending("typing") == []
    kill(victim)  # it never sends is_typing:false
    loop = asyncio.get_running_loop()
    killed = loop.time()
    ended = await b.expect("typing", timeout=TYPING_TIMEOUT * 1.5 + 5)
    assert ended["data"] == {
        "user_id": alice.user_id,
        "username": alice.username,
        "is_typing": False,
        "room_id": room,
    }
    assert loop.time() - killed <= TYPING_TIMEOUT * 1.5 + 1
    with pytest.raises(TimeoutError):  # ended once
        await b.expect("typing", timeout=TYPING_TIMEOUT)


# ---- Redis goes away and comes back -----------------------------------------------------


class PrivateRedis:
    """A throw-away redis-server on one port, stopped by PID, restartable on that port."""

    def __init__(self, binary: str, port: int, log_path: Path) -> None:
        self.binary, self.port, self.log_path = binary, port, log_path
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                stdout=log,
                stderr=log,
            )
        await eventually(self._answers, within=10, what="redis-server up")

    async def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            async with asyncio.timeout(10):
                await proc.wait()

    async def _answers(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            async with asyncio.timeout(1):
                return await reader.readline() == b"+PONG\r\n"
        finally:
            writer.close()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed (required in CI)")
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(binary, free_port(), tmp_path / "redis.log")
    await redis.start()
    try:
        yield redis
    finally:
        await redis.kill()


async def health(srv: Server) -> tuple[int, dict[str, Any]]:
    r = await srv.get("/health")
    return r.status_code, r.json()


async def test_redis_restart_mid_traffic_loses_nothing_and_heals_without_a_restart(
    pg_url: str, private_redis: PrivateRedis, start_server: StartServer, name: Namer
) -> None:
    a_srv, b_srv = await start_cluster(
        start_server, 2, cluster_env(pg_url, broker_url=private_redis.url)
    )
    room = name("shared")
    alice, amy, bob = [await a_srv.user(name()) for _ in range(3)]
    a = await joined(a_srv, alice, room, "shared")
    a2 = await joined(a_srv, amy, room)
    b = await joined(b_srv, bob, room)
    sender, other = Sender(a, room, "a"), Sender(b, room, "b")  # both sides talk
    sending = [asyncio.create_task(sender.run()), asyncio.create_task(other.run())]
    try:
        await sender.confirmed(30)
        await private_redis.kill()
        for srv in (a_srv, b_srv):  # both notice, and say so

            async def down(srv: Server = srv) -> bool:
                status, body = await health(srv)
                return status == 503 and body["broker"] == "down"

            await eventually(down, within=5, what="/health 503 with the broker down")
        # Same-process chat goes on: stored, confirmed, delivered there at once.
        during, during_b = await sender.confirmed(20), await other.confirmed(5)
        await eventually(
            lambda: _has_seq(a2, room, during), within=5, what="delivery on A while Redis is down"
        )
        await eventually(
            lambda: _has_seq(b, room, during_b), within=5, what="delivery on B while Redis is down"
        )
        await private_redis.start()
        for srv in (a_srv, b_srv):

            async def up(srv: Server = srv) -> bool:
                return (await health(srv))[0] == 200

            await eventually(up, within=10, what="/health 200 after Redis is back")
        await sender.confirmed(30)
    finally:
        sender.stop.set()
        other.stop.set()
        await asyncio.gather(*sending)

    sent = {**sender.sent, **other.sent}
    expected = sorted(sent.items())
    # No sync from the clients: each process re-reads the store once its broker link
    # is back, so every client gets every stored message, once, in seq order.
    for client in (a, a2, b):
        await eventually(
            partial(has_all, client, room, sent), within=10, what="every message after the heal"
        )
        assert chats(client, room) == expected
    assert await stored_chats(b_srv, room, bob) == sent
    # Presence is back in the fresh Redis too (refreshed every PRESENCE_TTL / 3).
    everyone = sorted(u.username for u in (alice, amy, bob))

    async def listed() -> bool:
        return await participants(b_srv, room, bob) == everyone

    await eventually(listed, within=2 * PRESENCE_TTL, what="participants after the heal")


async def _has_seq(client: ChatClient, room: str, seq: int) -> bool:
    return any(s == seq for s, _ in chats(client, room))


async def test_assistant_typing_of_a_sigkilled_process_ends_for_the_others(
    pg_url: str, start_server: StartServer, name: Namer
) -> None:
    # A slow offline model: the reply streams for far longer than the test runs.
    env = cluster_env(pg_url, OFFLINE_TOKEN_DELAY=TYPING_TIMEOUT, AI_PROVIDER="offline")
    survivor, victim = await start_cluster(start_server, 2, env)
    room = name("shared")
    alice, bob = await victim.user(name()), await survivor.user(name())
    a = await joined(victim, alice, room, "shared")
    b = await joined(survivor, bob, room)
    await a.send(chat(room, "tell me a long story", "ask-1", ai=True))
    started = await b.expect("typing", lambda f: f["data"]["username"] == "assistant")
    assert started["data"]["is_typing"] is True
    # The reply streams for longer than one lease (1.5 timeouts): the victim's
    # renewals keep it shown on the survivor, without showing it again.
    for _ in range(3):
        await b.expect("chat", lambda f: f["data"].get("streaming") is True)
    assert b.pending("typing") == []
    kill(victim)  # it never sends the assistant's is_typing:false
    loop = asyncio.get_running_loop()
    killed = loop.time()
    ended = await b.expect("typing", timeout=TYPING_TIMEOUT * 1.5 + 5)
    assert ended["data"] == {
        "user_id": "assistant",
        "username": "assistant",
        "is_typing": False,
        "room_id": room,
    }
    assert loop.time() - killed <= TYPING_TIMEOUT * 1.5 + 1
