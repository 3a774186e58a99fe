"""Bare uvicorn room-broadcast peer for the chinwag benchmark: the transport
stack chinwag is built on (uvicorn, httptools, uvloop, the websockets sans-I/O
protocol), with nothing on top, so the cost of the stack itself shows beside
chinwag's.

A raw ASGI app: every connection is accepted into one room and sent one
``{"type":"joined"}`` frame (the load generator's readiness signal, as the
``websockets`` peer sends); every text frame a client sends is sent to every
connection, sender included, one ``websocket.send`` each.

    python bench/peers/uvicorn_server.py --port 8767
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
ROOM: set[Send] = set()
JOINED = '{"type":"joined"}'


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    ROOM.add(send)
    try:
        await send({"type": "websocket.send", "text": JOINED})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                for peer in list(ROOM):
                    try:
                        await peer({"type": "websocket.send", "text": text})
                    except Exception:  # a peer that went away meanwhile
                        ROOM.discard(peer)
    finally:
        ROOM.discard(send)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8767)
    a = ap.parse_args()
    print(f"uvicorn peer listening on ws://{a.host}:{a.port}/", flush=True)
    uvicorn.run(
        app,
        host=a.host,
        port=a.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_level="warning",
        access_log=False,
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        backlog=2048,
        lifespan="off",
    )
