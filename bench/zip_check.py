"""What the upload zip check costs on an archive with very many members.

Writes a zip of ``--members`` empty entries (central directory records only, as a
hostile client would send: ~50 MB for 1M members, under the default MAX_FILE_SIZE),
then runs ``policy.zip_declared_sizes_ok`` on it in a fresh process and prints its
CPU time and peak RSS growth.

    python bench/zip_check.py --members 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR = struct.Struct("<4sLQL")
_EOCD = struct.Struct("<4s4H2LH")


def write_zip(path: Path, members: int) -> None:
    with path.open("wb") as f:
        f.write(b"PK\x03\x04" + bytes(26))  # the sniffed magic; nothing else is read
        start = f.tell()
        batch = []
        for i in range(members):
            name = f"{i:x}".encode()
            batch.append(
                _CENTRAL.pack(
                    b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0
                )
                + name
            )
            if len(batch) == 65536:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))
        size = f.tell() - start
        eocd64 = f.tell()
        f.write(_EOCD64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, members, members, size, start))
        f.write(_LOCATOR.pack(b"PK\x06\x07", 0, eocd64, 1))
        f.write(_EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))


def measure(path: str) -> None:
    from chinwag.files import policy

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.process_time()
    ok = policy.zip_declared_sizes_ok(path, 50 * 1024 * 1024)
    cpu = time.process_time() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "accepted": ok,
                "cpu_s": round(cpu, 3),
                "rss_growth_mib": round((after.ru_maxrss - before.ru_maxrss) / 1024, 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.zip"
        write_zip(path, args.members)
        print(f"{args.members} members, {path.stat().st_size / 2**20:.1f} MiB")
        subprocess.run([sys.executable, __file__, "--measure", str(path)], check=True)


if __name__ == "__main__":
    main()
