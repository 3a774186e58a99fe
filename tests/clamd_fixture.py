"""A real clamd for tests, started offline with a one-line signature database.

Recipe: /work/shared/clamav.md (Debian ``clamav-daemon``). Each instance gets a
temporary directory holding ``clamd.conf``, a ``db/`` with one body signature
(``Test.EICAR``, matched anywhere in any file), a unix socket and a free TCP port
on 127.0.0.1. It is ready when ``zPING`` answers ``PONG`` and is stopped by PID.

Use it from any test folder:

1. As a plugin, from the ROOT ``tests/conftest.py`` only (pytest refuses
   ``pytest_plugins`` in nested conftests). ``tests`` is a package, so::

       pytest_plugins = ["tests.clamd_fixture"]

   This registers ``clamd`` and ``clamd_factory`` for the whole suite; tests just
   ask for them by name. Do not import the fixture functions again in a nested
   conftest: a second registration means a second session clamd.

2. Helpers by plain import: ``from tests.clamd_fixture import Clamd, eicar_bytes,
   start_clamd`` (``start_clamd()`` also works outside pytest, e.g. in bench/;
   call ``.stop()`` on the result).

Fixtures:

- ``clamd`` (session): one shared running ``Clamd``; do not stop it.
- ``clamd_factory`` (function): ``clamd_factory()`` starts a private instance
  (e.g. to stop it in the test); all are stopped at the end of the test.

Without a ``clamd`` binary these fixtures skip, except in CI (``CI=true``, as in
tests/support.py, or ``CHINWAG_REQUIRE_CLAMD=1``), where they fail.
``eicar_bytes()`` builds the EICAR test string at run time so that the repository
never holds it whole.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Clamd", "clamd", "clamd_factory", "eicar_bytes", "find_clamd", "start_clamd"]

#: Limits above chinwag's 50 MB MAX_FILE_SIZE, with alerts instead of silent passes.
CLAMD_LIMITS = """\
StreamMaxLength 64M
MaxFileSize 64M
MaxScanSize 256M
AlertExceedsMax yes
AlertEncryptedArchive yes
MaxRecursion 16
MaxThreads 4
"""
READY_TIMEOUT = 60.0  # measured 0.4-0.7 s; generous for a loaded CI runner
STOP_TIMEOUT = 10.0


def eicar_bytes() -> bytes:
    """The 68-byte EICAR anti-virus test file, assembled from two halves."""
    first = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
    second = b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"
    return first + second


def _signature_line() -> str:
    return f"Test.EICAR:0:*:{eicar_bytes().hex()}\n"


def find_clamd() -> str | None:
    """Path of the clamd binary (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("clamd")
    if found:
        return found
    for candidate in ("/usr/sbin/clamd", "/usr/local/sbin/clamd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ping_unix(path: Path, timeout: float = 1.0) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(b"zPING\0")
            return s.recv(16) == b"PONG\0"
    except OSError:
        return False


def _ping_tcp(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"zPING\0")
            return s.recv(16) == b"PONG\0"
    except OSError:
        return False


@dataclass
class Clamd:
    """A running clamd: connect with ``socket_path`` or ``host``/``port``."""

    directory: Path
    socket_path: Path
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        path = self.directory / "clamd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop this clamd by its PID and wait for it. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        self.socket_path.unlink(missing_ok=True)
        if self.socket_path.parent != self.directory:
            shutil.rmtree(self.socket_path.parent, ignore_errors=True)


def start_clamd(directory: Path | None = None, *, binary: str | None = None) -> Clamd:
    """Start clamd in ``directory`` (a new temp dir by default); wait until it PONGs.

    Raises RuntimeError if it exits or does not answer within READY_TIMEOUT.
    """
    binary = binary or find_clamd()
    if binary is None:
        raise RuntimeError("clamd is not installed (apt-get install clamav-daemon)")
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="clamd-"))
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / "clamd.sock"
    if len(str(socket_path)) > 100:  # AF_UNIX paths are limited to ~108 bytes
        socket_path = Path(tempfile.mkdtemp(prefix="clamd-")) / "clamd.sock"
    (directory / "db").mkdir(exist_ok=True)
    (directory / "tmp").mkdir(exist_ok=True)
    (directory / "db" / "test.ndb").write_text(_signature_line())

    last_error = ""
    for _ in range(3):  # the free port may be taken between probe and bind
        port = _free_port()
        conf = directory / "clamd.conf"
        conf.write_text(
            "Foreground yes\n"
            f"LocalSocket {socket_path}\n"
            f"TCPSocket {port}\n"
            "TCPAddr 127.0.0.1\n"
            f"DatabaseDirectory {directory / 'db'}\n"
            f"TemporaryDirectory {directory / 'tmp'}\n"
            f"LogFile {directory / 'clamd.log'}\n" + CLAMD_LIMITS
        )
        (directory / "clamd.log").unlink(missing_ok=True)
        socket_path.unlink(missing_ok=True)
        stdout = (directory / "clamd.out").open("wb")
        try:
            process = subprocess.Popen(
                [binary, f"--config-file={conf}"],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
            )
        finally:
            stdout.close()
        instance = Clamd(directory, socket_path, "127.0.0.1", port, process)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and instance.running:
            if _ping_unix(socket_path) and _ping_tcp("127.0.0.1", port):
                return instance
            time.sleep(0.05)
        instance.stop()
        out = (directory / "clamd.out").read_text(errors="replace")
        last_error = f"{out}\n{instance.log()}"[-2000:]
    raise RuntimeError(f"clamd did not become ready:\n{last_error}")


def _require_clamd() -> str:
    binary = find_clamd()
    if binary is None:
        message = "clamd is not installed (apt-get install clamav-daemon)"
        if (
            os.environ.get("CI", "").lower() == "true"
            or os.environ.get("CHINWAG_REQUIRE_CLAMD") == "1"
        ):
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    """One clamd shared by the whole session. Do not stop it."""
    binary = _require_clamd()
    instance = start_clamd(tmp_path_factory.mktemp("clamd"), binary=binary)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def clamd_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Clamd]]:
    """Start private clamd instances (``clamd_factory()``); all stopped afterwards."""
    binary = _require_clamd()
    started: list[Clamd] = []

    def start() -> Clamd:
        instance = start_clamd(tmp_path_factory.mktemp("clamd"), binary=binary)
        started.append(instance)
        return instance

    try:
        yield start
    finally:
        for instance in started:
            instance.stop()
