"""python-socketio (v5) room-broadcast peer for the chinwag benchmark.

AsyncServer in ASGI mode (``socketio.ASGIApp``) served by uvicorn, websocket
transport only (no long-polling, no upgrade). Every client joins room
"bench" in its ``connect`` handler (before the CONNECT ack goes out, so a
client that sees ``connect`` is in the room); every ``msg`` event a client
emits is emitted to the room, sender included.

    python bench/peers/socketio_server.py --port 8766 [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse

import socketio
import uvicorn

ROOM = "bench"

sio = socketio.AsyncServer(
    async_mode="asgi",
    transports=["websocket"],
    cors_allowed_origins="*",
    logger=False,
    engineio_logger=False,
)
app = socketio.ASGIApp(sio)


@sio.event
async def connect(sid: str, environ: dict, auth: object = None) -> None:
    await sio.enter_room(sid, ROOM)


@sio.on("msg")
async def msg(sid: str, data: object) -> None:
    await sio.emit("msg", data, room=ROOM)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    a = ap.parse_args()
    uvicorn.run(
        app,
        host=a.host,
        port=a.port,
        loop=a.loop,
        log_level="warning",
        access_log=False,
        ws_per_message_deflate=False,
        backlog=2048,
        lifespan="off",
    )
