"""chinwag's own Python cost per delivered message, without sockets or kernel.

The real ChatService, wired and started as ``chinwag serve`` does (SQLite, the
in-process broker); N sessions joined to one room, whose "socket write" only counts;
one sender's M chat frames decoded and handled one after the other, as a connection
does. Prints the process's CPU time (all threads: the store's threads included) per
message and per delivery. What it leaves out is what every server pays alike: the
socket write, the kernel's TCP work, the event loop's I/O (see docs/performance.md
for the split).

    python bench/inprocess_bench.py                  # 1000 members x 100 messages
    python bench/inprocess_bench.py -n 100 -m 1000 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from chinwag.core.outbox import OutFrame
from chinwag.core.session import Identity
from chinwag.protocol.codec import decode, encode
from chinwag.server.app import create_app
from chinwag.server.deps import Runtime
from chinwag.settings import load_settings


async def measure(members: int, messages: int, profile: bool) -> None:
    workdir = tempfile.mkdtemp(prefix="chinwag-inprocess-")
    # The server's own wiring (create_app) and start-up (its lifespan), sockets aside.
    app = create_app(
        load_settings(
            data_dir=Path(workdir),
            jwt_secret="inprocess-bench-secret-0123456789abcdef-0123456789",
            ai_provider="offline",
            ws_rate_limit_requests=10**9,
            websocket_max_connections=100_000,
            log_level="WARNING",
        )
    )
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime
        await _measure(rt, members, messages, profile)
    shutil.rmtree(workdir, ignore_errors=True)


async def _measure(rt: Runtime, members: int, messages: int, profile: bool) -> None:
    service = rt.service
    writes = 0

    def write(frame: OutFrame) -> bool:
        nonlocal writes
        writes += 1
        if frame.wire is None:
            frame.wire = frame.text.encode()  # the encode a real write does once
        return True

    join = decode(encode({"type": "join_room", "room_id": "r", "data": {"room_type": "shared"}}))
    sessions = []
    for i in range(members + 1):
        session = await service.open(Identity(i + 1, f"user{i}"), time.time() + 3600)
        session.direct = write
        await service.attach(session, None)
        await service.handle(session, join)
        sessions.append(session)
    frames = [
        encode(
            {
                "type": "chat",
                "room_id": "r",
                "message_id": f"m{i}",
                "data": {"message": f'{{"t":{time.time()},"i":{i}}}', "ai": False},
            }
        )
        for i in range(messages)
    ]
    writes = 0
    profiler = cProfile.Profile() if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for text in frames:
        await service.handle(sessions[0], decode(text))
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    deliveries = messages * members  # the sender's own copy and confirmation not counted
    print(
        f"{members} members x {messages} messages: {writes:,} frames written, "
        f"CPU {cpu:.3f} s (wall {wall:.3f} s): {cpu * 1e3 / messages:.3f} ms per message, "
        f"{cpu * 1e6 / deliveries:.2f} µs per delivery"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--members", type=int, default=1000)
    ap.add_argument("-m", "--messages", type=int, default=100)
    ap.add_argument("--profile", action="store_true", help="print a cProfile summary")
    a = ap.parse_args()
    asyncio.run(measure(a.members, a.messages, a.profile))


if __name__ == "__main__":
    main()
