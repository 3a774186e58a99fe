"""py-spy around a server process: record a raw profile while a measurement runs,
then summarise it (self time by leaf frame, inclusive time of chinwag's frames).
py-spy comes from PyPI (``pip install py-spy``), next to this interpreter."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


def start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).with_name("py-spy")
    proc = subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attached before the burst starts
    return proc


def stop_profile(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def summarise_profile(path: Path, top: int = 15) -> str:
    """Self time by leaf frame, and inclusive time of chinwag's own functions."""
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if _idle(frames[-1]):
            continue  # waiting in the event loop's poll, not working
        total += n
        leaves[_short(frames[-1])] += n
        for f in {_short(f) for f in frames if "chinwag" in f}:
            inclusive[f] += n
    if not total:
        return "(no samples)"
    lines = [f"busy samples: {total}", "self time (leaf frames):"]
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in leaves.most_common(top)]
    lines.append("inclusive time (chinwag frames):")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in inclusive.most_common(top)]
    return "\n".join(lines)


def _idle(leaf: str) -> bool:
    return leaf.startswith(("select ", "poll ", "epoll")) or "selectors.py" in leaf


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit("/", 1)[-1].split(":")[0]
    return f"{name} ({where})" if where else name
