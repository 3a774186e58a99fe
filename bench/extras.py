"""chinwag-only measurements: the AI streaming relay, uploads, messages stored per second.

The peers (bare websockets, python-socketio) have no AI, uploads or message store, so
these run for target ``chinwag`` only. ``run.py`` prints them as a second table (the
peers' cells "n/a") and writes them to the same JSON file; ``ai_bench.py``,
``upload_bench.py`` and ``store_bench.py`` are command-line wrappers around the same
functions.

* ``ai-relay`` (``ai_relay_rep``): a fresh ``chinwag serve`` on the server cpu with the
  offline model at full speed (``OFFLINE_TOKEN_DELAY=0``: no model time); a Python
  client on the load generator's cpu sends chats with a long message (the offline
  model echoes it) over 1 connection, then over 8 at once (8 users, since a user's
  reply is streamed to every connection of that user), one reply at a time per
  connection. tokens/s = completion tokens of the streamed chunks (counted by the
  client with ``chinwag.ai.tokens.count_tokens``) / wall time; first chunk = send ->
  first chunk at the client. One warm-up reply first, not counted.
* ``upload-50mb`` (``upload_rep``): a fresh server; over one connection ``init``, the
  chunks (at most ``window`` unacknowledged), ``finalize``, until ``complete``.
  MB/s = file size / (init -> complete); server peak RSS = ``VmHWM`` after
  ``complete``, reset (``/proc/<pid>/clear_refs``) just before ``init``.
* ``store-sqlite`` / ``store-postgres`` (``store_rep``, ``store_measure.py``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_streams import ai_streams_rep
from cluster_bench import CLUSTER_SIZES, cluster_rep
from extras_support import MB, percentile, pinned, start_chinwag, ws_url
from procstat import Pinning, log
from report import Cell
from servers import TargetUnavailable
from store_measure import store_rep
from upload_measure import upload_rep

NA_NOTE = (
    "n/a: chinwag-only measurement; the bare websockets server and python-socketio "
    "have no AI relay, uploads or message store to compare"
)


# ------------------------------------------------------------- AI relay

LONG = "please summarise this " * 60  # the offline model echoes it: a long reply
AI_STREAMS = (1, 8)


async def _one_reply(ws: Any) -> tuple[float, int]:
    """One AI reply on a connection of its own user: (seconds from sending to the
    first chunk, completion tokens streamed)."""
    from chinwag.ai.tokens import count_tokens

    sent = time.perf_counter()
    await ws.send(
        json.dumps(
            {"type": "chat", "message_id": f"ai-{uuid.uuid4().hex}", "data": {"message": LONG}}
        )
    )
    first: float | None = None
    conversation = None
    tokens = 0
    async with asyncio.timeout(60):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "error":
                raise RuntimeError(f"server error: {frame.get('data')}")
            if frame["type"] != "chat":
                continue  # delivery_confirmation, heartbeats
            data = frame["data"]
            if data.get("done"):
                # A completion of another conversation is an earlier reply replayed to
                # this new connection (its user's cursor was not yet saved by the
                # connection closed just before): not this question's answer.
                if first is not None and data.get("conversation_id") == conversation:
                    return first - sent, tokens
                continue
            if first is None:
                first = time.perf_counter()
                conversation = data.get("conversation_id")
            tokens += count_tokens(data["content"])


async def _relay(urls: list[str], replies: int) -> dict[str, float]:
    """``replies`` replies spread over one connection per url, streamed at once."""
    from websockets.asyncio.client import connect

    conns = [await connect(url, ping_interval=None, compression=None) for url in urls]
    try:
        for ws in conns:
            await ws.recv()  # the connect frame
        await _one_reply(conns[0])  # warm-up, not counted

        async def sequential(ws: Any) -> list[tuple[float, int]]:
            return [await _one_reply(ws) for _ in range(replies // len(conns))]

        started = time.perf_counter()
        per_conn = await asyncio.gather(*(sequential(ws) for ws in conns))
        elapsed = time.perf_counter() - started
    finally:
        for ws in conns:
            await ws.close()
    done = [r for rs in per_conn for r in rs]
    firsts = [r[0] * 1000 for r in done]
    return {
        "replies": len(done),
        "tokens_per_s": sum(r[1] for r in done) / elapsed,
        "ttfc_p50_ms": percentile(firsts, 50),
        "ttfc_p99_ms": percentile(firsts, 99),
    }


def ai_relay_rep(pin: Pinning, workdir: Path, replies: int = 96) -> dict[str, float]:
    """One repetition: a fresh server, 1 stream then 8 streams at once.
    Keys: tokens_per_s_<n>, ttfc_p50_ms_<n>, ttfc_p99_ms_<n>, replies_<n>."""
    if replies < max(AI_STREAMS):
        raise ValueError(f"replies={replies}: need at least one per stream ({max(AI_STREAMS)})")
    server, tokens = start_chinwag(
        workdir,
        pin.server_cpu,
        users=max(AI_STREAMS),
        env={"AI_PROVIDER": "offline", "OFFLINE_TOKEN_DELAY": "0"},
    )
    try:
        out: dict[str, float] = {}
        with pinned(pin.loadgen_cpu):
            for n in AI_STREAMS:
                urls = [ws_url(server, t) for t in tokens[:n]]
                r = asyncio.run(_relay(urls, replies))
                out.update({f"{k}_{n}": round(v, 2) for k, v in r.items()})
        return out
    finally:
        server.stop()


# ------------------------------------------------------- in the run.py table

Metric = tuple[str, str, str]  # key, label, format


@dataclass
class Extra:
    """A chinwag-only scenario: ``run(pin, workdir)`` is one repetition."""

    name: str
    what: str
    metrics: list[Metric]
    run: Callable[[Pinning, Path], dict[str, Any]]

    def record(self) -> dict[str, str]:
        return {"name": self.name, "kind": "chinwag-only", "what": self.what}

    def brief(self, r: dict[str, Any]) -> str:
        if not r.get("ok"):
            return f"FAILED: {r.get('failure')}"
        return ", ".join(
            f"{label} {fmt.format(r[key])}"
            for key, label, fmt in self.metrics
            if r.get(key) is not None
        )


AI_METRICS: list[Metric] = [
    ("tokens_per_s_1", "tokens/s, 1 stream", "{:,.0f}"),
    ("tokens_per_s_8", "tokens/s, 8 streams", "{:,.0f}"),
    ("ttfc_p50_ms_1", "first chunk p50 ms, 1 stream", "{:.1f}"),
    ("ttfc_p99_ms_1", "first chunk p99 ms, 1 stream", "{:.1f}"),
    ("ttfc_p50_ms_8", "first chunk p50 ms, 8 streams", "{:.1f}"),
    ("ttfc_p99_ms_8", "first chunk p99 ms, 8 streams", "{:.1f}"),
]
STREAMS_METRICS: list[Metric] = [
    ("tokens_per_s", "tokens/s delivered", "{:,.0f}"),
    ("chunk_p50_ms", "chunk latency p50 ms", "{:.1f}"),
    ("chunk_p99_ms", "chunk latency p99 ms (bar 20)", "{:.1f}"),
    ("cpu_us_per_token", "server CPU µs/token", "{:.1f}"),
    ("loadgen_busy", "load gen busy", "{:.2f}"),
]
UPLOAD_METRICS: list[Metric] = [
    ("mb_s", "upload MB/s", "{:.1f}"),
    ("idle_rss_mib", "server RSS before MiB", "{:.0f}"),
    ("upload_hwm_mib", "server peak RSS MiB", "{:.0f}"),
]
CLUSTER_METRICS: list[Metric] = [
    (f"{key}_{n}", f"{label}, {n} proc", fmt)
    for key, label, fmt in (
        ("deliveries_per_s", "deliveries/s", "{:,.0f}"),
        ("us_per_delivery", "server CPU µs/delivery", "{:.1f}"),
        ("first_process_s", "sender's process CPU s", "{:.2f}"),
        ("postgres_s", "PostgreSQL CPU s", "{:.2f}"),
        ("redis_s", "Redis CPU s", "{:.2f}"),
    )
    for n in CLUSTER_SIZES
]
STORE_METRICS: list[Metric] = [
    ("msgs_per_s_1", "stored msgs/s, 1 writer", "{:,.0f}"),
    ("msgs_per_s_8", "stored msgs/s, 8 writers, 1 room", "{:,.0f}"),
    ("msgs_per_s_8_rooms", "stored msgs/s, 8 writers, 8 rooms", "{:,.0f}"),
]


def ai_streams(name: str, streams: int, words: int) -> Extra:
    return Extra(
        name,
        f"{streams} AI replies streaming at once, 50 tokens/s each, one user and "
        "WebSocket each, one server process",
        STREAMS_METRICS,
        functools.partial(ai_streams_rep, streams=streams, words=words),
    )


def smoke_extras() -> list[Extra]:
    """Every chinwag-only scenario at a size for --smoke (seconds each), so CI runs
    each one's code; the names say the sizes."""
    return [
        ai_streams("ai-streams-20", 20, 40),
        ai_relay("ai-relay-8", 8),
        upload("upload-2mb", 2),
        store("store-sqlite-50", "sqlite", 50),
        cluster("cluster-20", 20, 20),
        store("store-postgres-50", "postgres", 50),
    ]


def ai_relay(name: str, replies: int) -> Extra:
    return Extra(
        name,
        f"AI relay, offline model at full speed: {replies} replies on 1 stream, "
        "then 8 streams at once",
        AI_METRICS,
        functools.partial(ai_relay_rep, replies=replies),
    )


def upload(name: str, size_mb: int) -> Extra:
    return Extra(
        name,
        f"{size_mb} MB in 1 MB chunks over one WebSocket, 8 in flight, no scanning",
        UPLOAD_METRICS,
        functools.partial(upload_rep, size=size_mb * MB),
    )


def store(name: str, backend: str, events: int) -> Extra:
    where = "SQLite" if backend == "sqlite" else "PostgreSQL (a fresh database)"
    return Extra(
        name,
        f"SqlStore append on {where}, {events} messages per writer count",
        STORE_METRICS,
        functools.partial(store_rep, backend, events=events),
    )


def cluster(name: str, receivers: int, messages: int) -> Extra:
    return Extra(
        name,
        f"room fan-out over {', '.join(map(str, CLUSTER_SIZES))} processes on PostgreSQL "
        f"+ Redis: {receivers} receivers round-robin, 1 sender, a burst of {messages} chats",
        CLUSTER_METRICS,
        functools.partial(cluster_rep, receivers=receivers, messages=messages),
    )


def extras(quick: bool) -> list[Extra]:
    """The chinwag-only scenarios of a full or a --quick run."""
    replies, size_mb, events, receivers = (16, 10, 500, 60) if quick else (96, 50, 2000, 300)
    return [
        ai_streams("ai-streams-100", 100, 100)
        if quick
        else ai_streams("ai-streams-1000", 1000, 400),
        ai_relay("ai-relay", replies),
        upload("upload-50mb", size_mb),
        store("store-sqlite", "sqlite", events),
        cluster("cluster", receivers, 100),
        store("store-postgres", "postgres", events),
    ]


def run_all(
    chosen: list[Extra],
    targets: list[str],
    skipped: dict[str, str],
    reps: int,
    pin: Pinning,
    workdir: Path,
    verbose: bool = False,
) -> dict[str, dict[str, Cell]]:
    """{scenario: {"chinwag": Cell}}, like run.py's results; nothing without chinwag."""
    results: dict[str, dict[str, Cell]] = {}
    if "chinwag" not in targets:
        if chosen:
            log("bench: chinwag-only scenarios not run: chinwag is not among the targets")
        return results
    for ex in chosen:
        cell = results.setdefault(ex.name, {}).setdefault("chinwag", Cell())
        if "chinwag" in skipped:
            cell.skipped = skipped["chinwag"]
            continue
        for rep in range(1, reps + 1):
            t0 = time.monotonic()
            r: dict[str, Any] = {"target": "chinwag", "scenario": ex.name, "rep": rep}
            try:
                r.update(ok=True, **ex.run(pin, workdir / f"{ex.name}-{rep}"))
            except TargetUnavailable as e:
                cell.skipped = str(e)
                log(f"bench: SKIP chinwag {ex.name}: {e}")
                break
            except Exception as e:
                r.update(ok=False, failure=f"{type(e).__name__}: {e}")
            cell.reps.append(r)
            log(
                f"bench: {'chinwag':<10} {ex.name:<10} rep {rep}: {ex.brief(r)}"
                f"  [{time.monotonic() - t0:.1f} s]"
            )
            if verbose:
                log(json.dumps(r))
            if not r["ok"]:
                break
    return results


def summarise(results: dict[str, dict[str, Cell]], chosen: list[Extra]) -> dict[str, Any]:
    """{scenario: {"chinwag": {metric: median}}} for the JSON record."""
    out: dict[str, Any] = {}
    for ex in chosen:
        for tname, cell in results.get(ex.name, {}).items():
            out.setdefault(ex.name, {})[tname] = {
                "ok_reps": len(cell.ok_reps()),
                "reps": len(cell.reps),
                "skipped": cell.skipped,
                **{key: cell.median(key) for key, *_ in ex.metrics},
            }
    return out


def print_table(
    results: dict[str, dict[str, Cell]],
    chosen: list[Extra],
    target_names: list[str],
    file: Any = sys.stdout,
) -> None:
    """The second table, in the style of measure.print_table: medians, peers n/a¹."""
    shown = [ex for ex in chosen if ex.name in results]
    if not shown:
        return

    def w(s: str = "") -> None:
        print(s, file=file)

    w("\nchinwag-only measurements (AI relay, uploads, message store)")
    width, label_width = 24, 31
    for ex in shown:
        cell = results[ex.name]["chinwag"]
        w(f"\n== {ex.name}: {ex.what} (median of {len(cell.ok_reps())})")
        w(f"{'metric':<{label_width}}" + "".join(f"{t:>{width}}" for t in target_names))
        for key, label, fmt in ex.metrics:
            row = f"{label:<{label_width}}"
            for t in target_names:
                if t != "chinwag":
                    txt = "n/a¹"
                elif cell.skipped:
                    txt = "skipped"
                elif not cell.ok_reps():
                    txt = "FAILED"
                else:
                    v = cell.median(key)
                    txt = "—" if v is None else fmt.format(v)
                row += f"{txt:>{width}}"
            w(row)
        if cell.skipped:
            w(f"  - chinwag skipped: {cell.skipped}")
        for r in cell.reps:
            if not r.get("ok"):
                w(f"  ! chinwag rep {r.get('rep')}: {r.get('failure')}")
    if len(target_names) > 1:
        w(f"\n¹ {NA_NOTE}")
