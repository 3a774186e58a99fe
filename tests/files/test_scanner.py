"""ClamdScanner against a real clamd (tests/clamd_fixture.py) and, for failure modes
clamd will not produce on demand, against fake servers. Every failure must end in
ScanUnavailable (fail closed); only a clean verdict returns normally."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import time
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chinwag.files.scanner import ClamdScanner, DisabledScanner, Scanner
from chinwag.protocol.errors import ScanUnavailable, VirusDetected
from tests.clamd_fixture import Clamd

from .fake_clamd import FakeServer, Handler, read_instream, reply

MakeServer = Callable[[Handler], Awaitable[FakeServer]]
MB = 1024 * 1024


def _unix(clamd: Clamd, retries: int = 2) -> ClamdScanner:
    return ClamdScanner(socket_path=str(clamd.socket_path), timeout=30.0, retries=retries)


def _tcp(clamd: Clamd) -> ClamdScanner:
    return ClamdScanner(host=clamd.host, port=clamd.port, timeout=30.0)


def _write_large(path: Path, size: int, tail: bytes = b"") -> Path:
    """``size`` bytes of pseudo-random data with ``tail`` as the last bytes."""
    with path.open("wb") as f:
        remaining = size - len(tail)
        while remaining > 0:
            n = min(MB, remaining)
            f.write(os.urandom(n))
            remaining -= n
        f.write(tail)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ---- verdicts from a real clamd ---------------------------------------------------


@pytest.mark.parametrize("transport", ["unix", "tcp"])
async def test_clean_file_passes(clamd: Clamd, tmp_path: Path, transport: str) -> None:
    path = tmp_path / "clean.txt"
    path.write_text("nothing to see here\n")
    scanner = _unix(clamd) if transport == "unix" else _tcp(clamd)
    await scanner.scan(path)


async def test_empty_file_passes(clamd: Clamd, tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    await _unix(clamd).scan(path)


@pytest.mark.parametrize("transport", ["unix", "tcp"])
async def test_eicar_is_detected(
    clamd: Clamd, tmp_path: Path, eicar: bytes, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "eicar.txt"
    path.write_bytes(eicar)
    scanner = _unix(clamd) if transport == "unix" else _tcp(clamd)
    with caplog.at_level(logging.WARNING, logger="chinwag.files.scanner"):
        with pytest.raises(VirusDetected) as caught:
            await scanner.scan(path)
    assert "EICAR" not in caught.value.message  # the uploader learns no signature name
    assert "Test.EICAR.UNOFFICIAL" in caplog.text  # the operator does


async def test_eicar_inside_a_zip_is_detected(clamd: Clamd, tmp_path: Path, eicar: bytes) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "hello")
        archive.writestr("docs/eicar.com", eicar)
    path = tmp_path / "bundle.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(VirusDetected):
        await _unix(clamd).scan(path)


async def test_eicar_near_the_end_of_a_50_mb_file_is_detected(
    clamd: Clamd, tmp_path: Path, eicar: bytes
) -> None:
    path = _write_large(tmp_path / "big.bin", 50 * MB, tail=eicar + b"\n" * 100)
    with pytest.raises(VirusDetected):
        await _unix(clamd).scan(path)


async def test_clean_50_mb_file_passes(clamd: Clamd, tmp_path: Path) -> None:
    path = _write_large(tmp_path / "big.bin", 50 * MB)
    await _unix(clamd).scan(path)


async def test_stream_over_clamds_limit_is_unavailable_not_clean(
    clamd: Clamd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 70 MB > StreamMaxLength 64M: clamd answers "INSTREAM size limit exceeded. ERROR"
    # mid-stream and hangs up. That is no verdict; retrying cannot help, so none is made.
    path = _write_large(tmp_path / "huge.bin", 70 * MB)
    with caplog.at_level(logging.WARNING, logger="chinwag.files.scanner"):
        with pytest.raises(ScanUnavailable):
            await _unix(clamd, retries=2).scan(path)
    assert "size limit exceeded" in caplog.text
    assert "StreamMaxLength" in caplog.text
    assert "attempt 2/3" not in caplog.text


async def test_ping_answers_true_for_a_running_clamd(clamd: Clamd) -> None:
    assert await _unix(clamd).ping()
    assert await _tcp(clamd).ping()


# ---- fail closed --------------------------------------------------------------------


async def test_stopped_clamd_is_unavailable(
    clamd_factory: Callable[[], Clamd], tmp_path: Path
) -> None:
    private = clamd_factory()
    path = tmp_path / "clean.txt"
    path.write_text("fine")
    unix = ClamdScanner(socket_path=str(private.socket_path), timeout=5.0, backoff=0.01)
    tcp = ClamdScanner(host=private.host, port=private.port, timeout=5.0, backoff=0.01)
    await unix.scan(path)
    private.stop()
    for scanner in (unix, tcp):
        with pytest.raises(ScanUnavailable):
            await scanner.scan(path)
        assert not await scanner.ping()


async def test_closed_port_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "clean.txt"
    path.write_text("fine")
    scanner = ClamdScanner(host="127.0.0.1", port=_closed_port(), timeout=2.0, backoff=0.01)
    with pytest.raises(ScanUnavailable):
        await scanner.scan(path)
    assert not await scanner.ping()


async def test_missing_unix_socket_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "clean.txt"
    path.write_text("fine")
    scanner = ClamdScanner(socket_path=str(tmp_path / "nope.sock"), timeout=2.0, backoff=0.01)
    with pytest.raises(ScanUnavailable):
        await scanner.scan(path)


async def test_server_that_never_answers_is_unavailable_after_the_timeout(
    fake_server: MakeServer, tmp_path: Path
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_instream(reader)
        await server.release.wait()

    server = await fake_server(silent)
    path = tmp_path / "clean.txt"
    path.write_text("fine")
    scanner = ClamdScanner(host="127.0.0.1", port=server.port, timeout=0.3, retries=1, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(ScanUnavailable):
        await scanner.scan(path)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 5.0
    assert server.connections == 2  # one attempt and one retry


async def test_server_that_never_reads_is_unavailable_after_the_timeout(
    fake_server: MakeServer, tmp_path: Path
) -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.release.wait()

    server = await fake_server(deaf)
    path = _write_large(tmp_path / "big.bin", 20 * MB)  # more than socket buffers hold
    scanner = ClamdScanner(host="127.0.0.1", port=server.port, timeout=0.5, retries=0, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(ScanUnavailable):
        await scanner.scan(path)
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize(
    "answer",
    [
        b"",  # hang up without a verdict
        b"stream: OK",  # no terminating NUL, then hang up
        b"stream: Can't allocate memory ERROR\0",
        b"UNKNOWN COMMAND\0",
        b"\0",
    ],
)
async def test_anything_but_a_clean_verdict_is_unavailable_after_retries(
    fake_server: MakeServer, tmp_path: Path, answer: bytes
) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_instream(reader)
        await reply(writer, answer)

    server = await fake_server(broken)
    path = tmp_path / "clean.txt"
    path.write_text("fine")
    scanner = ClamdScanner(host="127.0.0.1", port=server.port, timeout=2.0, backoff=0.01)
    with pytest.raises(ScanUnavailable):
        await scanner.scan(path)
    assert server.connections == 3  # retries=2 by default


async def test_an_ok_before_the_end_of_the_stream_is_no_verdict(
    fake_server: MakeServer, tmp_path: Path
) -> None:
    async def hasty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\0")
        await reply(writer, b"stream: OK\0")  # without reading the file, then hang up

    server = await fake_server(hasty)
    path = _write_large(tmp_path / "big.bin", 20 * MB)
    scanner = ClamdScanner(host="127.0.0.1", port=server.port, timeout=5.0, backoff=0.01)
    with pytest.raises(ScanUnavailable):
        await scanner.scan(path)
    assert server.connections == 3


async def test_a_retry_that_succeeds_passes(fake_server: MakeServer, tmp_path: Path) -> None:
    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_instream(reader)
        if server.connections == 1:
            return  # the first connection is dropped without a reply
        await reply(writer, b"stream: OK\0")

    server = await fake_server(flaky)
    path = tmp_path / "clean.txt"
    path.write_text("fine")
    scanner = ClamdScanner(host="127.0.0.1", port=server.port, timeout=2.0, backoff=0.01)
    await scanner.scan(path)
    assert server.connections == 2


async def test_a_detection_is_not_retried(fake_server: MakeServer, tmp_path: Path) -> None:
    async def infected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_instream(reader)
        await reply(writer, b"stream: Heuristics.Encrypted.Zip FOUND\0")

    server = await fake_server(infected)
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK\x03\x04")
    scanner = ClamdScanner(host="127.0.0.1", port=server.port, timeout=2.0, backoff=0.01)
    with pytest.raises(VirusDetected):
        await scanner.scan(path)
    assert server.connections == 1


async def test_unreadable_file_is_unavailable_without_contacting_clamd(
    fake_server: MakeServer, tmp_path: Path
) -> None:
    async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_instream(reader)
        await reply(writer, b"stream: OK\0")

    server = await fake_server(ok)
    scanner = ClamdScanner(host="127.0.0.1", port=server.port, timeout=2.0, backoff=0.01)
    with pytest.raises(ScanUnavailable):
        await scanner.scan(tmp_path / "gone.txt")
    assert server.connections == 0


# ---- concurrency ---------------------------------------------------------------------


async def test_concurrent_scans_are_capped_at_max_concurrent(
    fake_server: MakeServer, tmp_path: Path
) -> None:
    four_inside = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_instream(reader)
        if server.active >= 4:
            four_inside.set()
        await asyncio.wait_for(four_inside.wait(), timeout=5.0)
        await reply(writer, b"stream: OK\0")

    server = await fake_server(slow)
    path = tmp_path / "clean.txt"
    path.write_text("fine")
    scanner = ClamdScanner(host="127.0.0.1", port=server.port, timeout=10.0, max_concurrent=4)
    async with asyncio.timeout(20):
        await asyncio.gather(*(scanner.scan(path) for _ in range(20)))
    assert server.connections == 20
    assert server.peak == 4


async def test_a_burst_of_scans_against_real_clamd_all_get_verdicts(
    clamd: Clamd, tmp_path: Path, eicar: bytes
) -> None:
    clean = tmp_path / "clean.txt"
    clean.write_bytes(b"fine\n" * 20_000)
    infected = tmp_path / "eicar.txt"
    infected.write_bytes(eicar)
    scanner = _unix(clamd)

    async def verdict(path: Path) -> str:
        try:
            await scanner.scan(path)
        except VirusDetected:
            return "virus"
        return "clean"

    paths = [infected if i % 5 == 0 else clean for i in range(60)]
    async with asyncio.timeout(60):
        verdicts = await asyncio.gather(*(verdict(p) for p in paths))
    assert verdicts == ["virus" if p == infected else "clean" for p in paths]


# ---- the interface -------------------------------------------------------------------


async def test_disabled_scanner_passes_everything(tmp_path: Path, eicar: bytes) -> None:
    path = tmp_path / "eicar.txt"
    path.write_bytes(eicar)
    scanner: Scanner = DisabledScanner()
    await scanner.scan(path)
    assert await scanner.ping()


def test_clamd_scanner_needs_an_address() -> None:
    with pytest.raises(ValueError):
        ClamdScanner()
    with pytest.raises(ValueError):
        ClamdScanner(host="127.0.0.1")
    with pytest.raises(ValueError):
        ClamdScanner(socket_path="/x", timeout=0)


def test_clamd_scanner_satisfies_the_protocol() -> None:
    scanner: Scanner = ClamdScanner(socket_path="/run/clamav/clamd.ctl")
    assert "clamd.ctl" in repr(scanner)
