"""AI streaming relay: how fast chinwag relays a model's stream, and how much time it
adds before the first chunk, with the offline model at full speed (no model time).

    python bench/ai_bench.py            # 96 replies on one stream, then 8 streams at once
    python bench/ai_bench.py --quick    # 16 replies

Starts a fresh `python -m chinwag serve` pinned to cpu 0 (defaults: SQLite, offline
model, OFFLINE_TOKEN_DELAY=0) and times replies from a client pinned to cpu 1. The
measurement is `extras.ai_relay_rep`, the same one `python bench/run.py` reports as
scenario `ai-relay` (see there for how the numbers are taken)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from extras import AI_STREAMS, ai_relay_rep
from procstat import Pinning


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--replies", type=int, help="replies per stream count (default 96; 16 quick)")
    args = ap.parse_args()
    replies = args.replies or (16 if args.quick else 96)
    pin = Pinning.detect()
    work = Path(tempfile.mkdtemp(prefix="chinwag-ai-"))
    try:
        r = ai_relay_rep(pin, work, replies)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"AI streaming relay, offline model at full speed (no model time); {pin.describe()}")
    print(
        f"{'streams at once':>16} {'replies':>8} {'tokens/s':>10} "
        f"{'first chunk p50 ms':>19} {'p99 ms':>8}"
    )
    for n in AI_STREAMS:
        print(
            f"{n:>16} {r[f'replies_{n}']:>8.0f} {r[f'tokens_per_s_{n}']:>10,.0f} "
            f"{r[f'ttfc_p50_ms_{n}']:>19.2f} {r[f'ttfc_p99_ms_{n}']:>8.2f}"
        )


if __name__ == "__main__":
    main()
