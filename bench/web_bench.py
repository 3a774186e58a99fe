"""The web app on a big room: time to first render of the latest page, and the
page's memory after scrolling back through older messages.

    python bench/web_bench.py                 # 10,000 messages, scroll back 1,000
    python bench/web_bench.py -n 2000 --back 300

Seeds a room of ``-n`` messages straight into a fresh SQLite store, starts
``chinwag serve`` on it, and drives Debian's Chromium (``CHROMIUM``, default
/usr/bin/chromium) with Playwright: sign in, click the room, wait for its newest
message; then scroll to the top until ``--back`` more messages are shown. Prints
the numbers; asserts nothing."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from chinwag.store.sql import SqlStore

ROOM = "big-room"
PASSWORD = "bench-password-1"


async def seed(url: str, count: int) -> float:
    store = SqlStore(url)
    await store.start()
    await store.rooms.create(ROOM, "Big room", "shared", "alice")
    await store.rooms.add_member(ROOM, "bob")  # before the messages: all of them are his backlog
    started = time.perf_counter()
    for i in range(count):
        sender = "alice" if i % 3 else "bob"
        await store.events.append(
            ROOM,
            "chat",
            {
                "role": "user",
                "content": f"message **{i + 1}** of {count}: the quick brown fox",
                "username": sender,
                "user_id": 0,
                "client_message_id": f"m{i}",
                "conversation_id": None,
                "timestamp": "2026-12-02T12:00:00.000Z",
            },
            sender=sender,
            client_message_id=f"m{i}",
        )
    await store.rooms.advance_read(ROOM, "alice", count)  # alice has read them all
    await store.close()
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"chinwag exited with {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("chinwag did not start")


def measure(base: str, back: int, username: str) -> dict[str, float]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(base + "/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("status").filter(has_text="connected").wait_for()
        log = page.get_by_role("log", name="Messages")
        started = time.perf_counter()
        page.get_by_role("button", name="Big room").click()
        log.locator("li[data-seq]").last.filter(has_text="of").wait_for()
        first_render = time.perf_counter() - started
        shown = log.locator("li[data-seq]").count()

        cdp.send("HeapProfiler.collectGarbage")
        heap_before = metrics(cdp)
        started = time.perf_counter()
        while log.locator("li[data-seq]").count() < shown + back:
            count = log.locator("li[data-seq]").count()
            page.evaluate("document.getElementById('messages').scrollTop = 0")
            page.wait_for_function(
                "n => document.querySelectorAll('#messages li[data-seq]').length > n", arg=count
            )
        scroll_back = time.perf_counter() - started
        total = log.locator("li[data-seq]").count()
        cdp.send("HeapProfiler.collectGarbage")
        after = metrics(cdp)
        browser.close()
    return {
        "first_render_s": first_render,
        "first_page": shown,
        "scroll_back_s": scroll_back,
        "shown_after": total,
        "heap_mb_first_page": heap_before["JSHeapUsedSize"] / 2**20,
        "heap_mb_after": after["JSHeapUsedSize"] / 2**20,
        "dom_nodes_after": after["Nodes"],
    }


def metrics(cdp: object) -> dict[str, float]:
    result = cdp.send("Performance.getMetrics")  # type: ignore[attr-defined]
    return {m["name"]: m["value"] for m in result["metrics"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="messages in the room")
    parser.add_argument("--back", type=int, default=1_000, help="older messages to scroll through")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        url = f"sqlite+aiosqlite:///{data / 'chinwag.db'}"
        seeded = asyncio.run(seed(url, args.n))
        port = free_port()
        env = {
            **os.environ,
            "DATA_DIR": str(data),
            "DATABASE_URL": url,
            "UPLOAD_DIR": str(data / "up"),
            "TEMP_DIR": str(data / "up" / "tmp"),
            "LOG_LEVEL": "warning",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "chinwag", "serve", "--port", str(port)], env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base, proc)
            for name in ("alice", "bob"):
                httpx.post(
                    base + "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
                ).raise_for_status()
            results = {who: measure(base, args.back, who) for who in ("alice", "bob")}
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"room of {args.n:,} messages (seeded in {seeded:.1f} s)")
    for who, label in (
        ("alice", "a member who has read the room"),
        ("bob", f"a member with all {args.n:,} as offline backlog"),
    ):
        report(label, results[who])


def report(label: str, result: dict[str, float]) -> None:
    print(label)
    print(
        f"  first render of the latest page: {result['first_render_s'] * 1000:.0f} ms "
        f"({result['first_page']:.0f} messages shown)"
    )
    print(
        f"  scrolled back to {result['shown_after']:.0f} messages in "
        f"{result['scroll_back_s']:.1f} s"
    )
    print(
        f"  JS heap: {result['heap_mb_first_page']:.1f} MB with the first page, "
        f"{result['heap_mb_after']:.1f} MB after scrolling back (after GC); "
        f"DOM nodes: {result['dom_nodes_after']:.0f}"
    )


if __name__ == "__main__":
    main()
