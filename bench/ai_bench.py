"""AI streaming relay: how fast chinwag relays a model's stream, and how much time it
adds before the first chunk, with the offline model at full speed (no model time).

    python bench/ai_bench.py            # 50 replies, one at a time, then 8 at once
    python bench/ai_bench.py --quick

Starts `python -m chinwag serve` on a free port (defaults: SQLite, offline model,
OFFLINE_TOKEN_DELAY=0), registers a user, and times replies over one WebSocket."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from websockets.asyncio.client import connect

LONG = "please summarise this " * 60  # the offline model echoes it: a long reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict[str, str], token: str | None = None) -> dict[str, object]:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


async def one_reply(ws, i: int) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """(time to first chunk s, stream seconds, tokens relayed)."""
    sent = time.perf_counter()
    await ws.send(json.dumps({"type": "chat", "message_id": f"ai-{i}-{time.time_ns()}",
                              "data": {"message": LONG}}))
    first = None
    chunks = 0
    conv = None
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] != "chat":
            continue
        data = frame["data"]
        if conv is None:
            conv = data["conversation_id"]
        if data["conversation_id"] != conv:
            continue
        if data.get("done"):
            done = time.perf_counter()
            return (first or done) - sent, done - (first or done), data["tokens_used"]
        if first is None:
            first = time.perf_counter()
        chunks += 1


async def run(base: str, token: str, replies: int, parallel: int) -> dict[str, float]:
    conns = [await connect(f"{base}/api/v1/ws/ws?token={token}") for _ in range(parallel)]
    for ws in conns:
        await ws.recv()  # connect frame
    started = time.perf_counter()
    results = await asyncio.gather(*(_sequential(ws, replies // parallel) for ws in conns))
    elapsed = time.perf_counter() - started
    flat = [r for per in results for r in per]
    for ws in conns:
        await ws.close()
    return {
        "replies": len(flat),
        "ttfc_ms_p50": statistics.median(r[0] for r in flat) * 1000,
        "ttfc_ms_p99": sorted(r[0] for r in flat)[int(len(flat) * 0.99) - 1] * 1000,
        "tokens_per_s": sum(r[2] for r in flat) / elapsed,
    }


async def _sequential(ws, n: int) -> list[tuple[float, float, int]]:  # type: ignore[no-untyped-def]
    return [await one_reply(ws, i) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    replies = 16 if args.quick else 48
    port = free_port()
    work = tempfile.mkdtemp(prefix="chinwag-ai-")
    env = {**os.environ, "DATA_DIR": work, "LOG_LEVEL": "warning", "OFFLINE_TOKEN_DELAY": "0",
           "WS_RATE_LIMIT_REQUESTS": "100000", "JWT_SECRET": "ai-bench-" + "x" * 32}
    server = subprocess.Popen([sys.executable, "-m", "chinwag", "serve", "--port", str(port)],
                              env=env, cwd=work)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        post(base + "/api/v1/auth/register", {"username": "ai", "password": "ai-bench-pw"})
        access = post(base + "/api/v1/auth/login",
                      {"username": "ai", "password": "ai-bench-pw"})["access_token"]
        token = post(base + "/api/v1/ws/token", {}, str(access))["token"]
        ws_base = f"ws://127.0.0.1:{port}"
        print("AI streaming relay, offline model at full speed (no model time)")
        print(f"{'streams at once':>16} {'replies':>8} {'tokens/s':>10} "
              f"{'first chunk p50 ms':>19} {'p99 ms':>8}")
        for parallel in (1, 8):
            r = asyncio.run(run(ws_base, str(token), replies, parallel))
            print(f"{parallel:>16} {r['replies']:>8.0f} {r['tokens_per_s']:>10,.0f} "
                  f"{r['ttfc_ms_p50']:>19.2f} {r['ttfc_ms_p99']:>8.2f}")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
