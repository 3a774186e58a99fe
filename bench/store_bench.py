"""Messages stored per second: chinwag's store path (seq assigned by the database in
one transaction) on SQLite and on PostgreSQL, one writer and several at once.

    python bench/store_bench.py            # 2000 events per cell, medians of 3
    python bench/store_bench.py --quick    # 500 events, 1 repetition

Needs PostgreSQL on 127.0.0.1:5432 (user postgres) for the second column; each
repetition makes and drops a throwaway database. Runs the real SqlStore, not a mock,
in this process pinned to cpu 0. The measurement is `store_measure.store_rep`, the same one
`python bench/run.py` reports as scenarios `store-sqlite` and `store-postgres`."""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from measure import Pinning, TargetUnavailable
from store_measure import STORE_CELLS, store_rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    events, reps = (500, 1) if args.quick else (2000, 3)
    pin = Pinning.detect()
    tmp = Path(tempfile.mkdtemp(prefix="chinwag-store-"))
    columns: dict[str, dict[str, float] | None] = {}
    try:
        for backend in ("sqlite", "postgres"):
            try:
                runs = [
                    store_rep(backend, pin, tmp / f"{backend}-{rep}", events) for rep in range(reps)
                ]
            except TargetUnavailable as e:
                print(f"{backend}: {e}")
                columns[backend] = None
                continue
            columns[backend] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"messages stored per second ({events} per cell, median of {reps}; {pin.describe()})")
    print(f"{'writers':>8} {'rooms':>6} {'SQLite':>10} {'PostgreSQL':>12}")
    for key, writers, rooms in STORE_CELLS:
        row = [f"{c[key]:,.0f}" if c else "n/a" for c in columns.values()]
        print(f"{writers:>8} {rooms:>6} {row[0]:>10} {row[1]:>12}")


if __name__ == "__main__":
    main()
