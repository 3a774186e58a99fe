"""Upload throughput and server memory: one file sent over one WebSocket in chunks.

Each run starts a fresh ``python -m chinwag serve`` pinned to cpu 0 (its own data,
upload and temp directories), registers a user, and over one connection (the client
pinned to cpu 1) sends ``init``, every chunk (pipelined: at most ``--window`` chunks
unacknowledged, the acks read as they come), then ``finalize``, and waits for
``complete``. Reported per run: MB/s over the whole upload (init to complete, so the
checksum check and, with scanning on, the clamd scan are included), the chunk phase
and the finalize phase separately, and the server's peak RSS (``VmHWM`` of
/proc/<pid>/status read after ``complete``; the idle figure is read before the upload
starts). Medians of ``--runs`` runs, scanning off and on (a real clamd from
tests/clamd_fixture.py with the one-line EICAR signature database; its limits cover
64 MB).

The measurement is ``extras.upload_rep``, the same one ``python bench/run.py``
reports as scenario ``upload-50mb`` (scanning off only); scanning on is measured
here only.

    .venv/bin/python bench/upload_bench.py                 # 50 MB, 1 MB chunks, 3 runs
    .venv/bin/python bench/upload_bench.py --scan off --runs 1 --size-mb 10

Needs Linux (/proc) and, for ``--scan on``, Debian's clamav-daemon.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from procstat import ROOT, Pinning, log
from upload_measure import MB, upload_rep

sys.path.insert(0, str(ROOT))  # tests.clamd_fixture


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
    pin = Pinning.detect()
    modes = ["off", "on"] if args.scan == "both" else [args.scan]
    results: dict[str, list[dict[str, float | None]]] = {}
    work = Path(tempfile.mkdtemp(prefix="chinwag-upload-bench-"))
    try:
        for mode in modes:
            env = {}
            clamd = None
            if mode == "on":
                from tests.clamd_fixture import start_clamd

                try:
                    clamd = start_clamd()
                except RuntimeError as e:  # clamd not installed
                    log(f"scan on: skipped: {e}")
                    continue
                env.update(VIRUS_SCAN_ENABLED="true", CLAMD_SOCKET=str(clamd.socket_path))
            try:
                runs = []
                for i in range(args.runs):
                    run = upload_rep(
                        pin, work / f"scan-{mode}-{i + 1}", size, chunk_size, args.window, env
                    )
                    log(
                        f"scan {mode} run {i + 1}: {run['mb_s']:.1f} MB/s "
                        f"({run['seconds']:.2f} s; chunks {run['chunk_mb_s']:.1f} MB/s, "
                        f"finalize {run['finalize_s']:.2f} s), RSS idle "
                        f"{run['idle_rss_mib']:.0f} MiB, upload peak {run['upload_hwm_mib']} MiB"
                    )
                    runs.append(run)
                results[mode] = runs
            finally:
                if clamd is not None:
                    clamd.stop()
                    shutil.rmtree(clamd.directory, ignore_errors=True)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nupload of {size / MB:.0f} MB in {chunk_size // 1024} kB chunks over one "
        f"WebSocket, window {args.window}, median of {args.runs}; {pin.describe()}"
    )
    print(
        "RSS: idle = before the upload; upload peak = VmHWM reset before the upload, read "
        "after complete;\n     process peak = VmHWM over the whole life (start-up and "
        "login included)"
    )
    print(
        f"{'scanning':<9} {'MB/s':>7} {'seconds':>8} {'chunks MB/s':>12} {'finalize s':>11} "
        f"{'idle MiB':>9} {'upload peak MiB':>16} {'process peak MiB':>17}"
    )
    for mode, runs in results.items():
        med = {k: _median([r[k] for r in runs]) for k in runs[0]}
        print(
            f"{mode:<9} {med['mb_s']:>7.1f} {med['seconds']:>8.2f} {med['chunk_mb_s']:>12.1f} "
            f"{med['finalize_s']:>11.2f} {med['idle_rss_mib']:>9.0f} "
            f"{med['upload_hwm_mib']:>16.0f} {med['peak_hwm_mib']:>17.0f}"
        )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _median(values: list[float | None]) -> float:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
