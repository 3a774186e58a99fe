"""The SDK survives what the network and the server do: a killed server, expiring
tokens, connections cut in the middle of traffic and of an upload."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chinwag_client import Backoff, Client, Event
from tests.sdk.proxy import CuttingProxy
from tests.support import PASSWORD, Server, kill

FAST = Backoff(base=0.05, cap=0.5)


async def collect_chats(
    client: Client, count: int, seen: list[Event], on_chat: Callable[[int], None] | None = None
) -> None:
    """Take events until ``count`` chats arrived; every stored event goes in ``seen``."""
    chats = 0
    async for event in client.events():
        if event.stored:
            seen.append(event)
        if event.type == "chat":
            chats += 1
            if on_chat is not None:
                on_chat(chats)
            if chats == count:
                return


def assert_exactly_once_in_order(seen: list[Event], texts: list[str]) -> None:
    seqs = [e.seq for e in seen]
    assert seqs == sorted(set(seqs)), "a seq came twice or out of order"  # type: ignore[type-var]
    assert [e.content for e in seen if e.type == "chat"] == texts


async def test_events_yield_every_seq_once_in_order_across_a_server_kill(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server()
    await srv.user("alice")
    await srv.user("bob")
    texts = [f"message {i}" for i in range(200)]
    async with (
        Client(srv.base, "alice", PASSWORD, backoff=FAST) as alice,
        Client(srv.base, "bob", PASSWORD, backoff=FAST) as bob,
    ):
        await alice.join("lobby")
        await bob.join("lobby")
        seen: list[Event] = []
        receiving = asyncio.create_task(collect_chats(bob, 200, seen))
        halfway = asyncio.Event()

        async def send_all() -> None:
            for i, text in enumerate(texts):
                await alice.send("lobby", text)
                if i == 99:
                    halfway.set()

        sending = asyncio.create_task(send_all())
        async with asyncio.timeout(60):
            await halfway.wait()
            kill(srv)  # SIGKILL: no close frames, no clean-up
            await srv.start()
            await sending
            await receiving
        assert bob.connections >= 2 and alice.connections >= 2
    assert_exactly_once_in_order(seen, texts)


async def test_a_token_expiring_every_5_seconds_goes_unnoticed(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server(WS_TOKEN_EXPIRE_SECONDS=5)
    await srv.user("erin")
    await srv.user("fred")
    texts = [f"tick {i}" for i in range(40)]
    async with (
        Client(srv.base, "erin", PASSWORD) as erin,
        Client(srv.base, "fred", PASSWORD) as fred,
    ):
        await erin.join("clock")
        await fred.join("clock")
        seen: list[Event] = []
        receiving = asyncio.create_task(collect_chats(fred, len(texts), seen))
        for text in texts:  # 20 s: four token lifetimes
            await erin.send("clock", text)
            await asyncio.sleep(0.5)
        async with asyncio.timeout(10):
            await receiving
        assert (erin.connections, fred.connections) == (1, 1)  # never dropped
    assert_exactly_once_in_order(seen, texts)


async def test_exactly_once_over_1000_messages_while_the_network_cuts_connections(
    start_server: Callable[..., Any],
) -> None:
    """Both clients go through a proxy that cuts every connection after random
    waits of 1 to 3 s, and after random counts of received chats; set
    CHINWAG_CUT_SEED to replay a failing run."""
    seed = int(os.environ.get("CHINWAG_CUT_SEED") or random.randrange(2**32))
    print(f"CHINWAG_CUT_SEED={seed}")
    rng = random.Random(seed)
    srv: Server = await start_server()
    await srv.user("gina")
    await srv.user("hank")
    texts = [f"m{i:04d}" for i in range(1000)]
    async with CuttingProxy(srv.port) as proxy:
        async with (
            Client(proxy.base, "gina", PASSWORD, backoff=FAST) as gina,
            Client(proxy.base, "hank", PASSWORD, backoff=FAST) as hank,
        ):
            await gina.join("busy")
            await hank.join("busy")
            seen: list[Event] = []
            cut_at = set(rng.sample(range(50, 900), 9))
            owed = 0

            def cut_on(n: int) -> None:
                # Chats come in bursts: one that reaches its count while the clients
                # are still reconnecting from the last cut waits until both are
                # connected again, so each of the 9 cuts hits both.
                nonlocal owed
                owed += n in cut_at
                if owed and gina.connected and hank.connected and proxy.open_links >= 2:
                    owed -= 1
                    proxy.cut()

            receiving = asyncio.create_task(collect_chats(hank, len(texts), seen, cut_on))
            proxy.cut_randomly(rng, 1.0, 3.0)
            window = asyncio.Semaphore(20)  # sends in flight at once, so cuts hit some

            async def send(text: str) -> None:
                async with window:
                    await gina.send("busy", text)

            async with asyncio.timeout(120):
                # Sent in order: each send is on the wire before the next one starts.
                sends = []
                for text in texts:
                    await window.acquire()
                    window.release()
                    sends.append(asyncio.create_task(send(text)))
                    await asyncio.sleep(0)
                await asyncio.gather(*sends)
                await receiving
            print(
                f"{proxy.cuts} cuts; connections: gina {gina.connections}, hank {hank.connections}"
            )
            assert proxy.cuts >= 9 and hank.connections >= 10 and gina.connections >= 10
    async with Client(srv.base, "hank", PASSWORD) as direct:
        stored = await all_history(direct, "busy")
    # Resends after a cut may overtake nothing: the room's order is the server's,
    # so compare the set and the seq order separately.
    seqs = [e.seq for e in seen]
    assert seqs == sorted(set(seqs))  # type: ignore[type-var]
    chats = [e.content for e in seen if e.type == "chat"]
    assert sorted(chats) == texts and len(chats) == len(set(chats))
    # The server stored each message once, whatever was resent after a cut.
    assert sorted(e.content for e in stored if e.type == "chat") == texts
    assert [e.seq for e in stored if e.type == "chat"] == [e.seq for e in seen if e.type == "chat"]


async def all_history(client: Client, room: str) -> list[Event]:
    """Every stored event of the room, oldest first, a page of 500 at a time."""
    events: list[Event] = []
    before: int | None = None
    while page := await client.history(room, before_seq=before, limit=500):
        events[:0] = page
        before = page[0].seq
        if len(page) < 500:
            break
    return events


async def test_an_upload_cut_off_midway_resumes_and_completes(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    srv: Server = await start_server(MAX_CHUNK_SIZE=262144)
    await srv.user("iris")
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("noise.bin", os.urandom(3 * 1024 * 1024))
    calls: list[tuple[int, int]] = []
    async with CuttingProxy(srv.port) as proxy:
        async with Client(proxy.base, "iris", PASSWORD, backoff=FAST) as iris:

            def progress(sent: int, total: int) -> None:
                calls.append((sent, total))
                if len(calls) == 3:
                    proxy.cut()

            async with asyncio.timeout(60):
                done = await iris.upload(str(path), progress=progress)
            assert iris.connections >= 2 and proxy.cuts == 1
            access = await iris.credentials.access()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert done.checksum == digest and done.file_size == path.stat().st_size
    r = await srv.http.get(srv.base + done.url, headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest
    assert calls[-1] == (path.stat().st_size, path.stat().st_size)
    assert [s for s, _ in calls] == sorted(s for s, _ in calls)


async def test_a_private_ai_reply_cut_off_midway_still_arrives_whole(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server(OFFLINE_TOKEN_DELAY=0.05)
    await srv.user("jill")
    async with CuttingProxy(srv.port) as proxy:
        async with Client(proxy.base, "jill", PASSWORD, backoff=FAST) as jill:
            stream = jill.ask_stream("tell me a long story")
            chunks = 0
            async with asyncio.timeout(60):
                async for _ in stream:
                    chunks += 1
                    if chunks == 3:
                        proxy.cut(hold=1.0)  # chunks written meanwhile are lost
            assert jill.connections >= 2 and stream.reply is not None
            r = await jill.http.get(
                f"/api/v1/conversations/{stream.reply.conversation_id}/messages",
                headers=await jill.credentials.auth_headers(),
            )
    stored = [m for m in r.json()["messages"] if m["role"] == "assistant"]
    assert stream.reply.text == stored[-1]["content"] and stream.reply.tokens_used > 0
