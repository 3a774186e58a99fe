"""chinwag's own Python cost per delivered message, without sockets or kernel.

The real ChatService on a real SQLite SqlStore and the in-process broker; N sessions
joined to one room, whose "socket write" only counts; one sender's M chat frames
decoded and handled one after the other, as a connection does. Prints the process's
CPU time (all threads: the aiosqlite thread included) per message and per delivery.
What it leaves out is what every server pays alike: the socket write, the kernel's
TCP work, the event loop's I/O (see docs/performance.md for the split).

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

from chinwag.ai.offline import OFFLINE_MODEL, OfflineProvider
from chinwag.ai.pricing import PriceTable
from chinwag.broker.memory import MemoryBroker
from chinwag.core.assistant import AssistantConfig
from chinwag.core.outbox import OutFrame
from chinwag.core.service import ChatService
from chinwag.core.session import Identity
from chinwag.core.uploads import UploadManager
from chinwag.core.wiring import AISetup, Limits
from chinwag.files.scanner import DisabledScanner
from chinwag.files.storage import UploadStorage
from chinwag.protocol.codec import decode, encode
from chinwag.store.sql import SqlStore


async def measure(members: int, messages: int, profile: bool) -> None:
    workdir = tempfile.mkdtemp(prefix="chinwag-inprocess-")
    store = SqlStore(f"sqlite+aiosqlite:///{workdir}/chinwag.db")
    await store.start()
    limits = Limits(
        max_connections=100_000,
        max_connections_per_user=10,
        outbox_size=1000,
        rate_limit_requests=10**9,
        rate_limit_window=1.0,
        presence_ttl=60,
        typing_timeout=5,
        cleanup_interval=3600,
        heartbeat_interval=3600,
        single_process=True,
    )
    broker = MemoryBroker()
    ai = AISetup(OfflineProvider(), PriceTable(), AssistantConfig(OFFLINE_MODEL, 30, 4000))
    uploads = UploadManager(
        UploadStorage(Path(workdir) / "up", Path(workdir) / "tmp"),
        DisabledScanner(),
        max_file_size=1 << 20,
        max_chunk_size=1 << 16,
        upload_timeout=60,
        max_uploads_per_user=1,
        max_temp_bytes_per_user=1 << 20,
    )
    service = ChatService(store, broker, broker, limits, "bench", ai=ai, uploads=uploads)
    await broker.start(service.hub.on_message, service.hub.resync_all)
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
    await store.close()
    shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--members", type=int, default=1000)
    ap.add_argument("-m", "--messages", type=int, default=100)
    ap.add_argument("--profile", action="store_true", help="print a cProfile summary")
    a = ap.parse_args()
    asyncio.run(measure(a.members, a.messages, a.profile))


if __name__ == "__main__":
    main()
