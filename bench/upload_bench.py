"""Upload throughput and server memory: one file sent over one WebSocket in chunks.

Each run starts a fresh ``python -m chinwag serve`` on a free port (its own data,
upload and temp directories), registers a user, and over one connection sends
``init``, every chunk (pipelined: at most ``--window`` chunks unacknowledged, the
acks read as they come), then ``finalize``, and waits for ``complete``. Reported
per run: MB/s over the whole upload (init to complete, so the checksum check and,
with scanning on, the clamd scan are included), the chunk phase and the finalize
phase separately, and the server's peak RSS (``VmHWM`` of /proc/<pid>/status read
after ``complete``; the idle figure is read before the upload starts). Medians of
``--runs`` runs, scanning off and on (a real clamd from tests/clamd_fixture.py
with the one-line EICAR signature database; its limits cover 64 MB).

The client pre-encodes the chunks once (about 1.33x the file size in memory) so
that its own work stays out of the way of the server's.

    .venv/bin/python bench/upload_bench.py                 # 50 MB, 1 MB chunks, 3 runs
    .venv/bin/python bench/upload_bench.py --scan off --runs 1 --size-mb 10

Needs Linux (/proc) and, for ``--scan on``, Debian's clamav-daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1 << 20
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"  # passes the .mp4 check
PASSWORD = "bench-password-123"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_hwm(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0), so the
    next reading is the peak of what follows. False if not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def http(method: str, url: str, body: dict[str, Any] | None = None,
         token: str | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


@dataclass
class File:
    size: int
    chunk_size: int
    encoded: list[str]  # base64 of each chunk
    sha256: str

    @classmethod
    def make(cls, size: int, chunk_size: int, seed: int = 1) -> File:
        digest = hashlib.sha256()
        encoded = []
        rng = random.Random(seed)
        for start in range(0, size, chunk_size):
            piece = bytearray(rng.randbytes(min(chunk_size, size - start)))
            if start == 0:
                piece[:len(MP4_HEAD)] = MP4_HEAD
            digest.update(piece)
            encoded.append(base64.b64encode(piece).decode())
        return cls(size, chunk_size, encoded, digest.hexdigest())


class Server:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**{k: v for k, v in os.environ.items()
                       if not k.startswith(("WEBSOCKET_", "WS_", "CLAMD_", "VIRUS_"))},
                    "DATA_DIR": str(workdir / "data"), "UPLOAD_DIR": str(workdir / "uploads"),
                    "TEMP_DIR": str(workdir / "uploads" / "temp"),
                    "JWT_SECRET": "bench-secret-" + "x" * 32, "LOG_LEVEL": "warning",
                    "WS_RATE_LIMIT_REQUESTS": "100000", **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.workdir / "server.log", "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chinwag", "serve", "--port", str(self.port)],
                cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("chinwag exited:\n" + self.log())
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chinwag did not start:\n" + self.log())
            time.sleep(0.05)

    def log(self) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def ws_token(self) -> str:
        username = "bench"
        http("POST", self.base + "/api/v1/auth/register",
             {"username": username, "password": PASSWORD})
        access = http("POST", self.base + "/api/v1/auth/login",
                      {"username": username, "password": PASSWORD})["access_token"]
        return str(http("POST", self.base + "/api/v1/ws/token", token=access)["token"])


async def reply(ws: ClientConnection) -> dict[str, Any]:
    """The next file_upload frame; an error frame raises."""
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "error":
            raise RuntimeError(f"server error: {frame['data']}")
        if frame["type"] == "file_upload":
            return dict(frame["data"])


async def upload(url: str, file: File, window: int) -> tuple[float, float]:
    """(seconds for init + chunks, seconds for finalize) over one connection."""
    async with connect(url, max_size=None, ping_interval=None, compression=None) as ws:
        json.loads(await ws.recv())  # connect
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "file_upload", "data": {
            "upload_type": "init", "file_name": "bench.mp4", "file_size": file.size,
            "mime_type": "video/mp4"}}))
        init = await reply(ws)
        file_id, total = init["file_id"], init["total_chunks"]
        assert total == len(file.encoded), init
        prefix = json.dumps({"type": "file_upload", "data": {
            "upload_type": "chunk", "file_id": file_id}})[:-2]  # ends inside "data"
        unacked = 0
        for index, encoded in enumerate(file.encoded):
            while unacked >= window:
                await reply(ws)
                unacked -= 1
            await ws.send(f'{prefix}, "chunk_index": {index}, "chunk_data": "{encoded}"}}}}')
            unacked += 1
        last: dict[str, Any] = {}
        while unacked:
            last = await reply(ws)
            unacked -= 1
        assert last.get("received_chunks") == total or total == 0, last
        t1 = time.perf_counter()
        await ws.send(json.dumps({"type": "file_upload", "data": {
            "upload_type": "finalize", "file_id": file_id, "checksum": file.sha256}}))
        done = await reply(ws)
        t2 = time.perf_counter()
        assert done["upload_type"] == "complete" and done["checksum"] == file.sha256, done
        return t1 - t0, t2 - t1


def one_run(file: File, window: int, env: dict[str, str], keep: bool) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="chinwag-upload-bench-"))
    server = Server(workdir, env)
    try:
        server.start()
        assert server.proc is not None
        token = server.ws_token()
        pid = server.proc.pid
        before = vm_kib(pid, "VmHWM")  # start-up and login (argon2 uses 64 MiB)
        idle = vm_kib(pid, "VmRSS")
        reset = reset_hwm(pid)
        url = f"ws://127.0.0.1:{server.port}/api/v1/ws/ws?token={token}"
        send_s, finalize_s = asyncio.run(upload(url, file, window))
        peak = vm_kib(pid, "VmHWM")
        total = send_s + finalize_s
        return {"mb_s": file.size / MB / total, "seconds": total,
                "chunk_mb_s": file.size / MB / send_s, "finalize_s": finalize_s,
                "idle_rss_mib": idle / 1024, "peak_hwm_mib": max(peak, before) / 1024,
                "upload_hwm_mib": (peak if reset else float("nan")) / 1024}
    except BaseException:
        log(server.log())
        raise
    finally:
        server.stop()
        if keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=50)
    parser.add_argument("--chunk-kb", type=int, default=1024)
    parser.add_argument("--window", type=int, default=8, help="chunks in flight")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scan", choices=["off", "on", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the servers' directories")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    size = int(args.size_mb * MB)
    chunk_size = args.chunk_kb * 1024
    log(f"preparing a {size / MB:.0f} MB file in {chunk_size // 1024} kB chunks")
    file = File.make(size, chunk_size)
    modes = ["off", "on"] if args.scan == "both" else [args.scan]
    results: dict[str, list[dict[str, float]]] = {}
    for mode in modes:
        env = {"MAX_CHUNK_SIZE": str(chunk_size), "MAX_FILE_SIZE": str(max(size, chunk_size))}
        clamd = None
        if mode == "on":
            from tests.clamd_fixture import start_clamd

            clamd = start_clamd()
            env.update(VIRUS_SCAN_ENABLED="true", CLAMD_SOCKET=str(clamd.socket_path))
        try:
            runs = []
            for i in range(args.runs):
                run = one_run(file, args.window, env, args.keep)
                log(f"scan {mode} run {i + 1}: {run['mb_s']:.1f} MB/s "
                    f"({run['seconds']:.2f} s; chunks {run['chunk_mb_s']:.1f} MB/s, "
                    f"finalize {run['finalize_s']:.2f} s), RSS idle {run['idle_rss_mib']:.0f} "
                    f"MiB, "
                    f"upload peak {run['upload_hwm_mib']:.0f} MiB")
                runs.append(run)
            results[mode] = runs
        finally:
            if clamd is not None:
                clamd.stop()
                shutil.rmtree(clamd.directory, ignore_errors=True)

    print(f"\nupload of {size / MB:.0f} MB in {chunk_size // 1024} kB chunks over one "
          f"WebSocket, window {args.window}, median of {args.runs}")
    print("RSS: idle = before the upload; upload peak = VmHWM reset before the upload, read "
          "after complete;\n     process peak = VmHWM over the whole life (start-up and "
          "login included)")
    print(f"{'scanning':<9} {'MB/s':>7} {'seconds':>8} {'chunks MB/s':>12} {'finalize s':>11} "
          f"{'idle MiB':>9} {'upload peak MiB':>16} {'process peak MiB':>17}")
    for mode, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{mode:<9} {med['mb_s']:>7.1f} {med['seconds']:>8.2f} {med['chunk_mb_s']:>12.1f} "
              f"{med['finalize_s']:>11.2f} {med['idle_rss_mib']:>9.0f} "
              f"{med['upload_hwm_mib']:>16.0f} {med['peak_hwm_mib']:>17.0f}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
