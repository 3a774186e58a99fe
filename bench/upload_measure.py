"""``upload-50mb`` (``upload_rep``): a fresh server; over one connection ``init``, the
chunks (at most ``window`` unacknowledged), ``finalize``, until ``complete``.
MB/s = file size / (init -> complete); server peak RSS = ``VmHWM`` after
``complete``, reset (``/proc/<pid>/clear_refs``) just before ``init``."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extras_support import MB, pinned, start_chinwag, ws_url
from procstat import Pinning, rss_kib

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"  # passes the .mp4 check


@dataclass
class File:
    size: int
    chunk_size: int
    encoded: list[str]  # base64 of each chunk
    sha256: str


@functools.cache
def test_file(size: int, chunk_size: int) -> File:
    """Random bytes (an .mp4 header first), pre-encoded once so that the client's own
    work stays out of the way of the server's (about 1.33 x the size in memory)."""
    digest = hashlib.sha256()
    encoded = []
    rng = random.Random(1)
    for start in range(0, size, chunk_size):
        piece = bytearray(rng.randbytes(min(chunk_size, size - start)))
        if start == 0:
            piece[: len(MP4_HEAD)] = MP4_HEAD
        digest.update(piece)
        encoded.append(base64.b64encode(piece).decode())
    return File(size, chunk_size, encoded, digest.hexdigest())


async def _upload_reply(ws: Any) -> dict[str, Any]:
    """The next file_upload frame; an error frame raises."""
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "error":
            raise RuntimeError(f"server error: {frame['data']}")
        if frame["type"] == "file_upload":
            return dict(frame["data"])


async def _upload(url: str, file: File, window: int) -> tuple[float, float]:
    """(seconds for init + chunks, seconds for finalize) over one connection."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None, ping_interval=None, compression=None) as ws:
        await ws.recv()  # the connect frame
        t0 = time.perf_counter()
        await ws.send(
            json.dumps(
                {
                    "type": "file_upload",
                    "data": {
                        "upload_type": "init",
                        "file_name": "bench.mp4",
                        "file_size": file.size,
                        "mime_type": "video/mp4",
                    },
                }
            )
        )
        init = await _upload_reply(ws)
        file_id, total = init["file_id"], init["total_chunks"]
        assert total == len(file.encoded), init
        prefix = json.dumps(
            {"type": "file_upload", "data": {"upload_type": "chunk", "file_id": file_id}}
        )[:-2]  # ends inside "data"
        unacked = 0
        for index, encoded in enumerate(file.encoded):
            while unacked >= window:
                await _upload_reply(ws)
                unacked -= 1
            await ws.send(f'{prefix}, "chunk_index": {index}, "chunk_data": "{encoded}"}}}}')
            unacked += 1
        last: dict[str, Any] = {}
        while unacked:
            last = await _upload_reply(ws)
            unacked -= 1
        assert last.get("received_chunks") == total or total == 0, last
        t1 = time.perf_counter()
        await ws.send(
            json.dumps(
                {
                    "type": "file_upload",
                    "data": {
                        "upload_type": "finalize",
                        "file_id": file_id,
                        "checksum": file.sha256,
                    },
                }
            )
        )
        done = await _upload_reply(ws)
        t2 = time.perf_counter()
        assert done["upload_type"] == "complete" and done["checksum"] == file.sha256, done
        return t1 - t0, t2 - t1


def _vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _reset_hwm(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def upload_rep(
    pin: Pinning,
    workdir: Path,
    size: int = 50 * MB,
    chunk_size: int = MB,
    window: int = 8,
    env: dict[str, str] | None = None,
) -> dict[str, float | None]:
    """One upload to a fresh server. ``env`` adds server settings (e.g. scanning)."""
    file = test_file(size, chunk_size)
    server_env = {
        "MAX_CHUNK_SIZE": str(chunk_size),
        "MAX_FILE_SIZE": str(max(size, chunk_size)),
        "VIRUS_SCAN_ENABLED": "false",
        **(env or {}),
    }
    server, (token,) = start_chinwag(workdir, pin.server_cpu, env=server_env)
    try:
        lifetime = _vm_kib(server.pid, "VmHWM")  # start-up and login (argon2: 64 MiB)
        idle = rss_kib(server.pid)
        reset = _reset_hwm(server.pid)
        with pinned(pin.loadgen_cpu):
            send_s, finalize_s = asyncio.run(_upload(ws_url(server, token), file, window))
        peak = _vm_kib(server.pid, "VmHWM")
    finally:
        server.stop()
        shutil.rmtree(workdir / "uploads", ignore_errors=True)
    seconds = send_s + finalize_s
    return {
        "mb_s": round(size / MB / seconds, 1),
        "seconds": round(seconds, 3),
        "chunk_mb_s": round(size / MB / send_s, 1),
        "finalize_s": round(finalize_s, 3),
        "idle_rss_mib": round(idle / 1024, 1),
        "upload_hwm_mib": round(peak / 1024, 1) if reset else None,
        "peak_hwm_mib": round(max(peak, lifetime) / 1024, 1),
    }
