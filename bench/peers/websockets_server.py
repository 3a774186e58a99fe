"""Bare `websockets` room-broadcast peer for the chinwag benchmark.

Every connected client is in one room. On connect the server adds the
connection to the room and sends it one ``{"type":"joined"}`` frame (the
load generator's readiness signal: it proves the connection is in the room
before the burst starts). Every text frame a client sends is broadcast
verbatim to every connected client, sender included, with
``websockets.asyncio.server.broadcast`` (encode once, write synchronously).

    python bench/peers/websockets_server.py --port 8765 [--loop uvloop|asyncio] [--processes N]

``--processes N`` (N > 1) runs N copies of the server on the same port with
SO_REUSEPORT (the kernel spreads connections over them by address hash), for
more connections than one process's file-descriptor limit allows; each copy
has its own room. This process only starts them, passes SIGTERM/SIGINT on and
waits.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

ROOM: set[ServerConnection] = set()
JOINED = '{"type":"joined"}'


async def handler(ws: ServerConnection) -> None:
    ROOM.add(ws)
    try:
        await ws.send(JOINED)
        async for message in ws:
            broadcast(ROOM, message)
    except ConnectionClosed:
        pass  # the load generator drops its connections without a close frame
    finally:
        ROOM.discard(ws)


async def main(host: str, port: int, reuse_port: bool = False) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # compression=None: no permessage-deflate (the load generator doesn't offer
    # it either); max_size/max_queue stay at their defaults; backlog raised so
    # a paced connect storm never overflows the accept queue.
    async with serve(
        handler, host, port, compression=None, backlog=2048, reuse_port=reuse_port or None
    ):
        print(f"websockets peer listening on ws://{host}:{port}/", flush=True)
        await stop


def run_processes(n: int, argv: list[str]) -> int:
    """Start n reuse_port copies of this server and wait for them."""
    children = [
        subprocess.Popen([sys.executable, __file__, *argv, "--reuse-port"]) for _ in range(n)
    ]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="event loop (default uvloop, as uvicorn uses when installed)",
    )
    ap.add_argument("--processes", type=int, default=1, help="reuse_port server processes")
    ap.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.processes > 1:
        sys.exit(
            run_processes(a.processes, ["--host", a.host, "--port", str(a.port), "--loop", a.loop])
        )
    if a.loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
            a.loop = "asyncio"
    if a.loop == "uvloop":
        uvloop.run(main(a.host, a.port, a.reuse_port))
    else:
        asyncio.run(main(a.host, a.port, a.reuse_port))
