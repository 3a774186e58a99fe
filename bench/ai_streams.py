"""A server full of people talking to the AI: N concurrent AI replies, each paced at
the offline model's ``OFFLINE_TOKEN_DELAY`` (0.02 s: 50 tokens/s), relayed by one
``chinwag serve`` process.

    python bench/ai_streams.py                 # 1000 streams (the ai-streams-1000 scenario)
    python bench/ai_streams.py --streams 100   # fewer

N users (seeded straight into the store, tokens minted with the bench secret, as
``big_room.py`` does), each with one WebSocket, each asking one roomless question
(a private AI conversation: the reply streams to that user's connections), the asks
spread evenly over ``ramp`` seconds. The client is Python (``websockets`` on
uvloop) in this process, pinned to the load generator's core; it only stamps and
keeps each frame while the replies stream, and parses them afterwards.

* *tokens*: the offline model's deltas (one per word, ``offline.py``). Every reply's
  chunks, joined in arrival order, must equal the offline model's answer to the
  question (``offline.answer``): complete and in order, or the repetition fails.
* *chunk latency* = client receive time - the chunk frame's ``timestamp``, which the
  server stamps when the model yields the delta (``frames.ai_chunk``), on the same
  machine's clock. The stamp has millisecond resolution and is truncated, and a
  merged frame (several deltas under pressure) carries its first delta's stamp, so
  both errors only make the latency larger.
* *server CPU per token* = server CPU (``procstat``, all threads) from before the
  first ask to the last completion ÷ tokens: admission, storage and the completion
  of each reply included.
* *load gen busy* = the client thread's CPU time ÷ wall time of the same span.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from extras_support import percentile, pinned, start_chinwag, ws_url
from procstat import Pinning, cpu_delta, cpu_snapshot

TOKEN_DELAY = 0.02  # 50 tokens/s per stream
_WORD = re.compile(r"\S+\s*")


def question(words: int) -> str:
    return "tell me about " + " ".join(f"w{i}" for i in range(words))


async def _stream(url: str, text: str, delay: float) -> tuple[list[tuple[float, str]], float]:
    """One user: connect, ask after ``delay`` s, keep every frame until the completion.
    (frames as (receive wall time, raw text), CPU-free as far as possible; ask time)."""
    from websockets.asyncio.client import connect

    async with connect(url, ping_interval=None, compression=None, max_queue=None) as ws:
        await ws.recv()  # the connect frame
        await asyncio.sleep(delay)
        asked = time.time()
        ask = {"type": "chat", "message_id": "ask", "data": {"message": text}}
        await ws.send(json.dumps(ask))
        got: list[tuple[float, str]] = []
        while True:
            raw = await ws.recv()
            got.append((time.time(), str(raw)))
            if '"done":true' in raw or '"type":"error"' in raw:
                return got, asked


def _check(frames: list[tuple[float, str]], expected: str) -> list[float]:
    """Latencies (ms) of one reply's chunks; raises unless they are all there, in order."""
    from datetime import datetime

    parts, lat = [], []
    for received, raw in frames:
        f = json.loads(raw)
        if f["type"] == "error":
            raise RuntimeError(f"server error: {f['data']}")
        d = f["data"]
        if f["type"] == "chat" and d.get("streaming"):
            parts.append(d["content"])
            stamp = datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00")).timestamp()
            lat.append((received - stamp) * 1000)
    if "".join(parts) != expected:
        raise RuntimeError(f"a reply arrived incomplete or out of order ({len(parts)} chunks)")
    return lat


async def _run(urls: list[str], words: int, ramp: float, pid: int) -> dict[str, float]:
    from chinwag.ai.base import ChatTurn
    from chinwag.ai.offline import OFFLINE_MODEL, answer

    text = question(words)
    expected = answer([ChatTurn("user", text)], OFFLINE_MODEL)
    n = len(urls)
    before, cpu0, started = cpu_snapshot(pid), time.thread_time(), time.time()
    # Connected (up to ~1 s at 1000) before the first ask, which comes after `ramp`/n.
    done = await asyncio.gather(*(_stream(u, text, 1.0 + ramp * i / n) for i, u in enumerate(urls)))
    elapsed, busy = time.time() - started, time.thread_time() - cpu0
    server_s, _ = cpu_delta(before, cpu_snapshot(pid))
    lat = [ms for frames, _ in done for ms in _check(frames, expected)]
    tokens = len(_WORD.findall(expected)) * n
    first_ask = min(asked for _, asked in done)
    last = max(frames[-1][0] for frames, _ in done)
    return {
        "streams": n,
        "tokens": tokens,
        "tokens_per_s": tokens / (last - first_ask),
        "chunk_p50_ms": percentile(lat, 50),
        "chunk_p99_ms": percentile(lat, 99),
        "chunk_max_ms": max(lat),
        "merged_pct": 100 * (1 - len(lat) / tokens),
        "cpu_us_per_token": server_s / tokens * 1e6,
        "loadgen_busy": busy / elapsed,
    }


def ai_streams_rep(
    pin: Pinning, workdir: Path, streams: int = 1000, words: int = 400, ramp: float = 2.0
) -> dict[str, float]:
    """One repetition on a fresh server: ``streams`` replies of about ``words`` + 30
    tokens at 50 tokens/s, asked over ``ramp`` seconds."""
    import uvloop
    from big_room import seed_big_room
    from targets import mint_ws_token

    env = {
        "AI_PROVIDER": "offline",
        "OFFLINE_TOKEN_DELAY": str(TOKEN_DELAY),
        "AI_CONTEXT_TOKENS": str(3 * words + 200),
    }
    server, _ = start_chinwag(workdir, pin.server_cpu, env=env)
    try:
        users = seed_big_room(workdir / "data" / "chinwag.db", streams, streams)
        urls = [ws_url(server, mint_ws_token(name, uid)) for name, uid in users]
        with pinned(pin.loadgen_cpu), asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
            out = r.run(_run(urls, words, ramp, server.pid))
        return {k: round(v, 2) for k, v in out.items()}
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--words", type=int, default=400, help="question length (the reply echoes it)")
    ap.add_argument("--ramp", type=float, default=2.0, help="seconds over which the asks start")
    a = ap.parse_args()
    pin = Pinning.detect()
    work = Path(tempfile.mkdtemp(prefix="chinwag-ai-streams-"))
    try:
        r: dict[str, Any] = ai_streams_rep(pin, work, a.streams, a.words, a.ramp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{a.streams} AI streams at {1 / TOKEN_DELAY:.0f} tokens/s each; {pin.describe()}")
    print(json.dumps(r, indent=1))
    print(f"bar p99 <= 20 ms: {'met' if r['chunk_p99_ms'] <= 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
