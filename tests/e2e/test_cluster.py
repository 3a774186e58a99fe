"""Several chinwag processes, one PostgreSQL, one Redis: one chat (SPEC §1, §2, §4).

Every test that starts processes runs twice (``broker_url``): over one Redis, and over
a 3-master Redis Cluster.

Every process of a cluster shares DATABASE_URL, BROKER_URL and JWT_SECRET, and the
cluster has its own REDIS_KEY_PREFIX so clusters of different tests never see each
other's presence or stats. Clients are spread over the processes on purpose: every
assertion here is about something crossing from one process to another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chinwag.client import Closed
from tests.e2e.cluster_helpers import (
    PRESENCE_TTL,
    TYPING_TIMEOUT,
    attached,
    cluster_env,
    eventually,
    is_presence,
    participants,
    require_backends,
    start_cluster,
)
from tests.e2e.rooms_helpers import chat, is_chat_from, joined
from tests.support import (
    Namer,
    Server,
    ServerFactory,
    StartServer,
    postgres_database,
)


@pytest.fixture(scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory, broker_url: str
) -> AsyncIterator[list[Server]]:
    """Three processes; tests use their own users and rooms to stay apart."""
    await require_backends()
    async with postgres_database() as url:
        factory = ServerFactory(tmp_path_factory.mktemp("cluster"))
        try:
            yield await start_cluster(
                factory.start, 3, cluster_env(url, broker_url, WEBSOCKET_MAX_CONNECTIONS_PER_USER=2)
            )
        finally:
            await factory.stop_all()


# ---- one room, one order ---------------------------------------------------------


async def test_concurrent_senders_on_three_processes_give_everyone_one_gapless_order(
    cluster: list[Server], name: Namer
) -> None:
    room = name("shared")
    users = [await cluster[i % 3].user(name()) for i in range(6)]
    clients = [await joined(cluster[0], users[0], room, "shared")]
    clients += [await joined(cluster[i % 3], u, room) for i, u in enumerate(users) if i]
    senders = clients[:3]  # one on each process

    async def blast(index: int) -> None:
        for i in range(100):
            await senders[index].send(chat(room, f"{index}:{i}", f"{index}-{i}"))

    await asyncio.gather(*(blast(i) for i in range(3)))
    streams = []
    for client in clients:
        frames = [await client.expect("chat", timeout=30) for _ in range(300)]
        streams.append([(f["seq"], f["data"]["content"]) for f in frames])
    assert all(stream == streams[0] for stream in streams)
    seqs = [s for s, _ in streams[0]]
    assert seqs == list(range(seqs[0], seqs[0] + 300))  # strictly increasing, gapless
    for index in range(3):  # each sender's own order is kept
        assert [c for _, c in streams[0] if c.startswith(f"{index}:")] == [
            f"{index}:{i}" for i in range(100)
        ]
    await senders[0].send(chat(room, "marker", "marker"))
    for client in clients:  # nothing twice: the next chat anyone sees is the marker
        assert (await client.expect("chat"))["data"]["content"] == "marker"


# ---- receipts ----------------------------------------------------------------------


async def test_offline_member_back_on_another_process_gets_backlog_and_sender_receipts(
    cluster: list[Server], name: Namer
) -> None:
    a_srv, b_srv, c_srv = cluster
    room = name("shared")
    alice, bob = await a_srv.user(name()), await b_srv.user(name())
    a = await joined(a_srv, alice, room, "shared")
    b = await joined(b_srv, bob, room)
    await b.close()
    await a.expect("presence", is_presence(bob.username, "offline"))
    seqs = []
    for i in range(5):
        await a.send(chat(room, f"away {i}", f"away-{i}"))
        c = await a.expect("delivery_confirmation")
        assert c["data"]["status"] == "delivered" and c["data"]["queued_for"] == [bob.username]
        seqs.append(c["data"]["seq"])
    b = await c_srv.connect(bob)  # back on a third process
    got = [await b.expect("chat", is_chat_from(alice.username)) for _ in range(5)]
    assert [(f["seq"], f["data"]["content"]) for f in got] == [
        (s, f"away {i}") for i, s in enumerate(seqs)
    ]
    receipts = [
        await a.expect(
            "delivery_confirmation", lambda f: f["data"].get("recipient") == bob.username
        )
        for _ in range(5)
    ]
    assert sorted(r["data"]["message_id"] for r in receipts) == [f"away-{i}" for i in range(5)]
    assert {r["data"]["status"] for r in receipts} == {"delivered"}


async def test_read_receipt_on_one_process_reaches_the_sender_on_another(
    cluster: list[Server], name: Namer
) -> None:
    a_srv, b_srv, _ = cluster
    room = name("shared")
    alice, bob = await a_srv.user(name()), await b_srv.user(name())
    a = await joined(a_srv, alice, room, "shared")
    b = await joined(b_srv, bob, room)
    seqs = []
    for i in range(3):
        await a.send(chat(room, f"read me {i}", f"r-{i}"))
        seqs.append((await a.expect("delivery_confirmation"))["data"]["seq"])
    for _ in range(3):
        await b.expect("chat", is_chat_from(alice.username))
    await b.send({"type": "read_receipt", "data": {"room_id": room, "seq": seqs[1]}})
    reads = [
        await a.expect("delivery_confirmation", lambda f: f["data"]["status"] == "read")
        for _ in range(2)
    ]
    assert [r["data"]["message_id"] for r in reads] == ["r-0", "r-1"]
    assert {r["data"]["recipient"] for r in reads} == {bob.username}


# ---- typing and presence -------------------------------------------------------------


async def test_typing_crosses_processes_is_not_echoed_and_expires(
    cluster: list[Server], name: Namer
) -> None:
    room = name("shared")
    users = [await srv.user(name()) for srv in cluster]
    a = await joined(cluster[0], users[0], room, "shared")
    others = [await joined(srv, u, room) for srv, u in zip(cluster[1:], users[1:], strict=True)]
    await a.send({"type": "typing", "data": {"is_typing": True, "room_id": room}})
    loop = asyncio.get_running_loop()
    started = loop.time()
    for client in others:
        frame = await client.expect("typing")
        assert frame["data"] == {
            "user_id": users[0].user_id,
            "username": users[0].username,
            "is_typing": True,
            "room_id": room,
        }
    for client in others:
        stopped = await client.expect("typing", timeout=TYPING_TIMEOUT + 5)
        assert stopped["data"]["is_typing"] is False
    assert loop.time() - started >= TYPING_TIMEOUT * 0.8
    # The room channel keeps one publisher's order: once alice sees her own chat,
    # any typing frame of hers would have arrived before it.
    await a.send(chat(room, "done"))
    await a.expect("chat", is_chat_from(users[0].username))
    assert not a.pending("typing")


async def test_chat_on_one_process_ends_typing_seen_on_another(
    cluster: list[Server], name: Namer
) -> None:
    room = name("shared")
    alice, bob = await cluster[0].user(name()), await cluster[1].user(name())
    a = await joined(cluster[0], alice, room, "shared")
    b = await joined(cluster[1], bob, room)
    await a.send({"type": "typing", "data": {"is_typing": True, "room_id": room}})
    await b.expect("typing", lambda f: f["data"]["is_typing"] is True)
    await a.send(chat(room, "sent"))
    await b.expect("chat", is_chat_from(alice.username))
    assert (await b.expect("typing", timeout=TYPING_TIMEOUT / 2))["data"]["is_typing"] is False


async def test_presence_and_participants_span_processes(cluster: list[Server], name: Namer) -> None:
    a_srv, b_srv, c_srv = cluster
    room = name("shared")
    alice, bob = await a_srv.user(name()), await b_srv.user(name())
    a = await joined(a_srv, alice, room, "shared")
    b = await joined(b_srv, bob, room)
    joined_event = await a.expect("presence", is_presence(bob.username, "joined"))
    assert isinstance(joined_event["seq"], int)  # a membership change is stored
    for srv in cluster:  # every process answers the same
        assert await participants(srv, room, alice) == sorted([alice.username, bob.username])
    await b.close()
    offline = await a.expect("presence", is_presence(bob.username, "offline"))
    assert "seq" not in offline  # online/offline are ephemeral
    assert await participants(c_srv, room, alice) == [alice.username]
    await c_srv.connect(bob)  # back, on another process
    await a.expect("presence", is_presence(bob.username, "online"))
    for srv in cluster:
        assert await participants(srv, room, alice) == sorted([alice.username, bob.username])


async def test_offline_is_announced_only_when_the_last_connection_anywhere_closes(
    cluster: list[Server], name: Namer
) -> None:
    a_srv, b_srv, _ = cluster
    room = name("shared")
    alice, bob = await a_srv.user(name()), await a_srv.user(name())
    a = await joined(a_srv, alice, room, "shared")
    on_a = await joined(a_srv, bob, room)
    on_b = await attached(b_srv, bob)  # bob's second device, on another process
    await on_a.close()
    with pytest.raises(TimeoutError):  # bob is still online through process B
        await a.expect("presence", is_presence(bob.username, "offline"), timeout=1)
    assert await participants(a_srv, room, alice) == sorted([alice.username, bob.username])
    await on_b.close()
    await a.expect("presence", is_presence(bob.username, "offline"))
    assert await participants(a_srv, room, alice) == [alice.username]


async def test_one_user_joining_from_two_processes_at_once_is_one_membership(
    cluster: list[Server], name: Namer
) -> None:
    room = name("shared")
    owner = await cluster[0].user(name())
    await joined(cluster[0], owner, room, "shared")
    users = [await cluster[0].user(name()) for _ in range(6)]

    async def two_devices(user: Any) -> None:  # the same join, on B and C at once
        await asyncio.gather(joined(cluster[1], user, room), joined(cluster[2], user, room))

    await asyncio.gather(*(two_devices(u) for u in users))
    info = (await cluster[0].get(f"/api/v1/ws/rooms/{room}", owner)).json()
    assert sorted(info["members"]) == sorted([owner.username, *(u.username for u in users)])
    history = (await cluster[0].get(f"/api/v1/ws/rooms/{room}/messages", owner)).json()
    joins = [
        e["data"]["username"]
        for e in history["messages"]
        if e["type"] == "presence" and e["data"]["status"] == "joined"
    ]
    assert sorted(joins) == sorted(u.username for u in users)  # one "joined" each


async def test_join_confirmation_lists_participants_of_every_process(
    cluster: list[Server], name: Namer
) -> None:
    room = name("shared")
    users = [await srv.user(name()) for srv in cluster]
    await joined(cluster[0], users[0], room, "shared")
    await joined(cluster[1], users[1], room)
    c = await cluster[2].connect(users[2])
    await c.send({"type": "join_room", "data": {"room_id": room}})
    confirmation = await c.expect("join_room")
    assert set(confirmation["data"]["participants"]) == {u.username for u in users}


# ---- limits and stats ------------------------------------------------------------------


async def test_per_user_connection_limit_counts_every_process(
    cluster: list[Server], name: Namer
) -> None:
    a_srv, b_srv, _ = cluster  # WEBSOCKET_MAX_CONNECTIONS_PER_USER=2
    alice = await a_srv.user(name())
    first = await attached(a_srv, alice)
    await attached(a_srv, alice)
    third = await b_srv.raw_connect(alice)
    error = await third.expect("error")
    assert error["data"]["code"] == "TOO_MANY_CONNECTIONS"
    assert await third.wait_closed() == 1013
    await first.close()

    async def admitted() -> bool:
        client = await b_srv.raw_connect(alice)
        try:
            await client.expect("connect", timeout=2)
        except Closed:
            return False
        return True

    await eventually(admitted, within=5, what="a connection after one closed")


async def test_stats_sum_connections_of_every_node(
    pg_url: str, start_server: StartServer, name: Namer, broker_url: str
) -> None:
    a_srv, b_srv = await start_cluster(start_server, 2, cluster_env(pg_url, broker_url))
    admin = await a_srv.admin()
    users = [await a_srv.user(name()) for _ in range(3)]
    for srv, user in [(a_srv, users[0]), (a_srv, users[1]), (b_srv, users[2])]:
        await attached(srv, user)

    async def summed(srv: Server) -> bool:
        stats = (await srv.get("/api/v1/ws/stats", admin)).json()
        return (stats["nodes"], stats["active_connections"], stats["active_users"]) == (2, 3, 3)

    # Each node publishes its numbers every PRESENCE_TTL / 3 seconds.
    await eventually(lambda: summed(a_srv), within=PRESENCE_TTL * 3, what="stats on A")
    await eventually(lambda: summed(b_srv), within=PRESENCE_TTL * 3, what="stats on B")
    stats = (await b_srv.get("/api/v1/ws/stats", admin)).json()
    assert stats["total_connections"] >= 3
