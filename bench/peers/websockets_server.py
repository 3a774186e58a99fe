"""Bare `websockets` room-broadcast peer for the chinwag benchmark.

Every connected client is in one room. On connect the server adds the
connection to the room and sends it one ``{"type":"joined"}`` frame (the
load generator's readiness signal: it proves the connection is in the room
before the burst starts). Every text frame a client sends is broadcast
verbatim to every connected client, sender included, with
``websockets.asyncio.server.broadcast`` (encode once, write synchronously).

    python bench/peers/websockets_server.py --port 8765 [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import signal

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


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # compression=None: no permessage-deflate (the load generator doesn't offer
    # it either); max_size/max_queue stay at their defaults; backlog raised so
    # a paced connect storm never overflows the accept queue.
    async with serve(handler, host, port, compression=None, backlog=2048):
        print(f"websockets peer listening on ws://{host}:{port}/", flush=True)
        await stop


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
    a = ap.parse_args()
    if a.loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
            a.loop = "asyncio"
    if a.loop == "uvloop":
        uvloop.run(main(a.host, a.port))
    else:
        asyncio.run(main(a.host, a.port))
