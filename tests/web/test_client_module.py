"""The browser client module on its own, loaded as a developer would load it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

NewPage = Callable[..., Awaitable[Any]]
CLIENT = "/static/js/chinwag-client.js"


async def test_backoff_is_full_jitter_capped_and_seq_tracker_accepts_each_seq_once(
    start_server: Any, new_page: NewPage
) -> None:
    srv = await start_server()
    page = await new_page(srv.base)
    await page.goto("/health")  # same origin, no app running
    result = await page.evaluate(
        """async (url) => {
        const m = await import(url);
        const t = new m.SeqTracker();
        return {
          low: m.backoffDelay(3, {random: () => 0}),
          high: m.backoffDelay(3, {base: 500, cap: 15000, random: () => 1}),
          capped: m.backoffDelay(20, {base: 500, cap: 15000, random: () => 1}),
          accepts: [t.accept('r', 1), t.accept('r', 1), t.accept('r', 3), t.accept('r', 2),
                    t.accept('other', 1)],
        };
    }""",
        CLIENT,
    )
    assert result == {
        "low": 0,
        "high": 4000,
        "capped": 15000,
        "accepts": [True, False, True, False, True],
    }


async def test_a_message_sent_across_a_drop_is_stored_once_and_every_event_handed_over_once(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    user = await srv.user(name("dev"))
    room = name("room")
    page = await new_page(srv.base)
    await page.goto("/health")
    result = await page.evaluate(
        """async ([url, username, password, room]) => {
        const { ChinwagClient } = await import(url);
        const c = new ChinwagClient({ storage: null, backoff: { base: 50, cap: 200 } });
        const seen = [];
        c.addEventListener("room-event", (e) => seen.push(e.detail.seq));
        await c.signIn(username, password);
        c.connect();
        await c.ready();
        await c.join(room, { roomType: "shared" });
        await c.send(room, "one").confirmed;
        c.ws.close(4000, "test drop");                 // the network goes away
        const two = c.send(room, "two");               // sent while offline: queued
        const confirmed = await two.confirmed;         // resent after the reconnect
        const three = await c.send(room, "three").confirmed;
        const page = await c.history(room);
        const chats = page.messages.filter((m) => m.type === "chat");
        return { seen, seqs: [confirmed.seq, three.seq], stored: chats.map((m) => m.data.content) };
    }""",
        [CLIENT, user.username, "correct-horse-battery", room],
    )
    assert result["stored"] == ["one", "two", "three"]
    assert result["seen"] == sorted(set(result["seen"]))  # once each, in order
    assert set(result["seqs"]) <= set(result["seen"])


async def test_an_upload_cut_by_a_drop_resumes_with_status_and_sends_only_what_is_missing(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server(MAX_CHUNK_SIZE=65536)
    user = await srv.user(name("dev"))
    page = await new_page(srv.base)
    await page.goto("/health")
    result = await page.evaluate(
        """async ([url, username, password]) => {
        const { ChinwagClient } = await import(url);
        const c = new ChinwagClient({ storage: null, backoff: { base: 50, cap: 200 } });
        await c.signIn(username, password);
        c.connect();
        await c.ready();
        const text = "x".repeat(20 * 65536 + 123);
        const chunks = [];
        let statuses = 0;
        const sent = c._send.bind(c);
        c._send = (f) => {  // count the chunks that really went out
          const ok = sent(f);
          if (ok && f.data?.upload_type === "chunk") chunks.push(f.data.chunk_index);
          if (ok && f.data?.upload_type === "status") statuses += 1;
          return ok;
        };
        let dropped = false;
        const done = await c.upload(new File([text], "long.txt", { type: "text/plain" }), {
          window: 1,
          onProgress: (s) => {
            if (!dropped && s >= 5 * 65536) { dropped = true; c.ws.close(4000); }
          },
        });
        const bytes = await (await c.fileBlob(done.url)).text();
        return { same: bytes === text, chunks, total: 21, name: done.file_name, dropped,
                 statuses };
    }""",
        [CLIENT, user.username, "correct-horse-battery"],
    )
    assert result["same"] and result["name"] == "long.txt"
    assert result["dropped"] and result["statuses"] == 1
    assert sorted(set(result["chunks"])) == list(range(result["total"]))
    assert len(result["chunks"]) <= result["total"] + 1  # at most the one cut in flight again
