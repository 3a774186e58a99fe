"""The Python SDK (chinwag_client) end to end: deliveries/s through SDK clients, and
what a SIGKILL of the server in the middle of a burst costs them.

    python bench/sdk_bench.py                 # 20 receivers, 1,000 messages, clean and killed
    python bench/sdk_bench.py -n 50 -m 2000

One chinwag process (SQLite). N SDK receivers and one SDK sender join a shared room;
the sender sends M chats (up to 50 unconfirmed at once). A delivery is one chat
handed to one receiver's ``events()``. "killed": when half the chats are confirmed
the server gets SIGKILL and is started again on the same port and files; every
client reconnects, resumes by ``sync`` and resends what was unconfirmed. Each
receiver must get every chat exactly once, in seq order, or the run fails.
``recovery`` is the time from the restarted server accepting connections to the
last delivery of the chats that were in flight when it died.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import ServerProc, free_port
from targets import CHINWAG_ENV, _http_json

from chinwag_client import Backoff, Client

PASSWORD = "bench-password-1"
WINDOW = 50


def start(port: int, workdir: Path) -> ServerProc:
    env = {
        **CHINWAG_ENV,
        "DATA_DIR": str(workdir / "data"),
        "UPLOAD_DIR": str(workdir / "up"),
        "TEMP_DIR": str(workdir / "up" / "temp"),
    }
    proc = ServerProc(
        "chinwag",
        [sys.executable, "-m", "chinwag", "serve", "--port", str(port)],
        port,
        workdir,
        env=env,
    )
    proc.wait_ready()
    return proc


async def receive(client: Client, m: int, done: list[float]) -> list[int]:
    seqs: list[int] = []
    async for event in client.events():
        if event.type == "chat" and event.seq is not None:
            seqs.append(event.seq)
            if len(seqs) == m:
                done.append(time.perf_counter())
                return seqs
    raise RuntimeError("events() ended early")


async def run(n: int, m: int, kill: bool, workdir: Path) -> dict[str, float]:
    port = free_port()
    server = start(port, workdir)
    base = f"http://127.0.0.1:{port}"
    names = [f"sdk{i}" for i in range(n + 1)]
    for name in names:
        _http_json("POST", f"{base}/api/v1/auth/register", {"username": name, "password": PASSWORD})
    room = f"bench-{'killed' if kill else 'clean'}-{int(time.time())}"
    backoff = Backoff(base=0.05, cap=0.5)
    clients = [Client(base, name, PASSWORD, backoff=backoff) for name in names]
    restarted_at = 0.0
    try:
        for c in clients:
            await c.start()
            await c.join(room)
        sender, receivers = clients[0], clients[1:]
        finished: list[float] = []
        tasks = [asyncio.create_task(receive(r, m, finished)) for r in receivers]
        window = asyncio.Semaphore(WINDOW)
        confirmed = 0
        half = asyncio.Event()

        async def send(i: int) -> None:
            nonlocal confirmed
            try:
                await sender.send(room, f"bench {i}")
            finally:
                window.release()
            confirmed += 1
            if confirmed == m // 2:
                half.set()

        started = time.perf_counter()
        sends = []
        for i in range(m):
            await window.acquire()
            sends.append(asyncio.create_task(send(i)))
            if kill and half.is_set() and not restarted_at:
                server.proc.send_signal(signal.SIGKILL)
                server.proc.wait()
                server = start(port, workdir)
                restarted_at = time.perf_counter()
        await asyncio.gather(*sends)
        results = await asyncio.wait_for(asyncio.gather(*tasks), 120)
        elapsed = max(finished) - started
        for seqs in results:
            if seqs != sorted(set(seqs)) or len(seqs) != m:
                raise RuntimeError("a receiver got a chat twice, out of order or not at all")
        return {
            "deliveries_per_s": n * m / elapsed,
            "seconds": elapsed,
            "recovery_s": max(finished) - restarted_at if restarted_at else 0.0,
            "reconnects": sum(c.connections - 1 for c in clients),
        }
    finally:
        for c in clients:
            await c.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="receivers")
    parser.add_argument("-m", type=int, default=1000, help="messages")
    args = parser.parse_args()
    print(f"SDK end to end: {args.n} receivers, {args.m} messages, one process (SQLite)")
    print(f"{'run':<8} {'deliveries/s':>13} {'seconds':>8} {'recovery s':>11} {'reconnects':>11}")
    for kill in (False, True):
        with TemporaryDirectory() as tmp:
            r = asyncio.run(run(args.n, args.m, kill, Path(tmp)))
        print(
            f"{'killed' if kill else 'clean':<8} {r['deliveries_per_s']:>13,.0f} "
            f"{r['seconds']:>8.2f} {r['recovery_s']:>11.2f} {r['reconnects']:>11.0f}"
        )
    print("every receiver got every chat exactly once, in seq order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
