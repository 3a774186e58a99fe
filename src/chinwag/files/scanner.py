"""Virus scanning behind a two-method interface.

Invariant: ``Scanner.scan`` returns normally only for a file that was scanned and
found clean. Anything else (a detection, an error reply, an empty reply, a refused
or dropped connection, a timeout) raises, so callers that publish only after a
normal return fail closed.

``ClamdScanner`` speaks clamd's ``INSTREAM`` over a unix socket or TCP. clamd must
be configured with ``StreamMaxLength`` and ``MaxFileSize`` above the upload limit
and ``AlertExceedsMax yes``, or large content comes back "OK" unscanned.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import BinaryIO, Protocol

from chinwag.protocol.errors import ScanUnavailable, VirusDetected

logger = logging.getLogger(__name__)

_REJECTED = "the virus scan rejected this file"
_UNAVAILABLE = "the virus scanner is unavailable; try again later"


class Scanner(Protocol):
    async def scan(self, path: Path) -> None:
        """Return if the file at ``path`` is clean.

        Raises VirusDetected when the scanner rejects it and ScanUnavailable when
        it could not be scanned. Never reads the whole file into memory.
        """

    async def ping(self) -> bool:
        """True when the scanner answers now (for health checks). Never raises."""


class DisabledScanner:
    """``VIRUS_SCAN_ENABLED=false``: every file passes unscanned."""

    async def scan(self, path: Path) -> None:
        return None

    async def ping(self) -> bool:
        return True


class _Unscanned(Exception):
    """One attempt failed without a verdict; ``retry`` says whether another may help."""

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.retry = retry


class ClamdScanner:
    """Scans with clamd's ``zINSTREAM`` command.

    Give either ``socket_path`` (unix socket) or ``host`` and ``port``. Each attempt
    (connect, stream, verdict) is bounded by ``timeout`` seconds; a failed attempt is
    retried ``retries`` times with exponential backoff, then ScanUnavailable is
    raised. At most ``max_concurrent`` scans talk to clamd at once: clamd drops
    connections without a reply when more arrive than it has threads
    (``MaxThreads``), so keep the two equal.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        host: str | None = None,
        port: int | None = None,
        timeout: float = 60.0,
        max_concurrent: int = 4,
        retries: int = 2,
        *,
        backoff: float = 0.25,
        chunk_size: int = 256 * 1024,
    ) -> None:
        if socket_path is None and (host is None or port is None):
            raise ValueError("ClamdScanner needs socket_path, or host and port")
        if timeout <= 0 or max_concurrent < 1 or retries < 0 or chunk_size < 1:
            raise ValueError("ClamdScanner: timeout, max_concurrent, chunk_size must be positive")
        self._socket_path = socket_path
        self._host = host
        self._port = port
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._chunk_size = chunk_size
        self._slots = asyncio.Semaphore(max_concurrent)

    def __repr__(self) -> str:
        where = self._socket_path or f"{self._host}:{self._port}"
        return f"ClamdScanner({where})"

    async def scan(self, path: Path) -> None:
        attempts = self._retries + 1
        for attempt in range(attempts):
            try:
                async with self._slots:
                    reply = await self._instream(Path(path))
            except _Unscanned as exc:
                logger.warning(
                    "clamd scan of %s failed (attempt %d/%d): %s", path, attempt + 1, attempts, exc
                )
                if not exc.retry:
                    break
            else:
                if reply == "stream: OK":
                    return
                if reply.endswith(" FOUND"):
                    signature = reply.removeprefix("stream: ").removesuffix(" FOUND")
                    logger.warning("clamd rejected %s: %s", path, signature)
                    raise VirusDetected(_REJECTED)
                logger.warning(
                    "clamd gave no verdict for %s (attempt %d/%d): %r",
                    path,
                    attempt + 1,
                    attempts,
                    reply,
                )
                if "size limit exceeded" in reply:
                    logger.error("clamd's StreamMaxLength is below the upload limit; raise it")
                    break
            if attempt + 1 < attempts:
                await asyncio.sleep(self._backoff * 2**attempt)
        raise ScanUnavailable(_UNAVAILABLE)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(min(self._timeout, 5.0)):
                reader, writer = await self._connect()
                try:
                    writer.write(b"zPING\0")
                    await writer.drain()
                    reply = await reader.readuntil(b"\0")
                finally:
                    writer.transport.abort()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return False
        return reply == b"PONG\0"

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._socket_path is not None:
            return await asyncio.open_unix_connection(self._socket_path)
        return await asyncio.open_connection(self._host, self._port)

    async def _instream(self, path: Path) -> str:
        """One attempt: the reply without its NUL, or _Unscanned."""
        try:
            f: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except OSError as exc:
            raise _Unscanned(f"cannot open the file: {exc}", retry=False) from exc
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    reader, writer = await self._connect()
                except OSError as exc:
                    raise _Unscanned(f"cannot connect: {exc}") from exc
                try:
                    return await self._exchange(f, reader, writer)
                finally:
                    writer.transport.abort()
        except TimeoutError as exc:
            raise _Unscanned(f"no verdict within {self._timeout}s") from exc
        finally:
            f.close()

    async def _exchange(
        self, f: BinaryIO, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str:
        # The verdict is awaited while streaming: clamd answers early and hangs up
        # when it refuses the stream (e.g. "INSTREAM size limit exceeded. ERROR"), and
        # that reason would be lost if we only read after a failed write.
        verdict = asyncio.ensure_future(reader.readuntil(b"\0"))
        complete = False
        try:
            try:
                writer.write(b"zINSTREAM\0")
                while not verdict.done():
                    chunk = await asyncio.to_thread(f.read, self._chunk_size)
                    writer.write(len(chunk).to_bytes(4, "big"))
                    writer.write(chunk)
                    await writer.drain()
                    if not chunk:  # the zero-length chunk ends the stream
                        complete = True
                        break
            except OSError as exc:
                logger.debug("clamd closed the stream early: %s", exc)
            try:
                reply = (await verdict)[:-1].decode("utf-8", "replace").strip()
            except asyncio.IncompleteReadError as exc:
                raise _Unscanned("clamd closed the connection without a verdict") from exc
            except asyncio.LimitOverrunError as exc:
                raise _Unscanned("clamd's reply was too long") from exc
            except OSError as exc:
                raise _Unscanned(f"connection lost: {exc}") from exc
        finally:
            if not verdict.done():
                verdict.cancel()
            elif not verdict.cancelled():
                verdict.exception()  # retrieved: no "exception never retrieved" log
        if not complete and reply == "stream: OK":
            raise _Unscanned("clamd answered OK before the end of the stream")
        return reply
