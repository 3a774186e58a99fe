"""Upload bytes in a local directory: one temporary file per upload, then a
published file. Every process on the machine (or on a shared filesystem) reaches
the same files, so any of them can take the next chunk of any upload.

Invariants:

- No client input ever reaches a path. Temporary files are named after the
  upload's UUID, published files after a fresh ``uuid4().hex``; every method that
  takes a stored name refuses any other.
- Memory stays bounded whatever the file size: a chunk is written where it belongs
  (``os.pwrite``) and flushed to disk before it is acknowledged, so a chunk the
  database records as received survives a crash of the process.
- Only ``publish`` puts a file in ``upload_dir``; everything else (in progress,
  unscanned, rejected) stays in ``temp_dir``, which is never served.
- All file work runs in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from chinwag.protocol.errors import StorageError, UploadNotFound

logger = logging.getLogger(__name__)

_STORED_NAME = re.compile(r"[0-9a-f]{32}")
STORAGE_FAILED = "the server could not store the file; try again later"
#: Bytes read at a time when a published file is streamed.
STREAM_PIECE = 1 << 16


def upload_key(upload_id: str) -> str:
    """The 32-hex-digit form of an upload id; UploadNotFound for anything not a UUID."""
    try:
        return uuid.UUID(upload_id).hex
    except (ValueError, AttributeError, TypeError) as exc:
        raise UploadNotFound("upload not found") from exc


def check_stored_name(stored_name: str) -> str:
    """``stored_name`` if ``publish`` could have produced it, else UploadNotFound."""
    if not _STORED_NAME.fullmatch(stored_name):
        raise UploadNotFound("file not found")
    return stored_name


class LocalStorage:
    """Temporary files for uploads in progress and the published files.

    ``temp_dir`` and ``upload_dir`` should be on one filesystem so publishing is a
    rename; otherwise ``publish`` falls back to a copy. The storage keeps no state
    of its own: the database says which chunks arrived."""

    def __init__(self, upload_dir: Path, temp_dir: Path) -> None:
        self.upload_dir = Path(upload_dir)
        self.temp_dir = Path(temp_dir)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    # ---- uploads in progress -------------------------------------------------

    async def create(self, upload_id: str, size: int) -> str:
        """Create the empty temporary file for an upload of ``size`` bytes. Returns
        the handle to pass back (always empty here). Raises StorageError."""
        if size < 0:
            raise ValueError("size must be >= 0")
        path = self.temp_path(upload_id, must_exist=False)
        try:
            await asyncio.to_thread(_create, path, size)
        except OSError as exc:
            logger.error("cannot create %s: %s", path, exc)
            raise StorageError(STORAGE_FAILED) from exc
        return ""

    async def write_chunk(
        self, upload_id: str, handle: str, index: int, offset: int, data: bytes
    ) -> str:
        """Write chunk ``index`` at ``offset`` and flush it to disk. Returns the
        chunk's token (empty here). UploadNotFound if the upload was discarded; on
        any other OSError (disk full …) the temporary file is removed and
        StorageError raised."""
        del handle, index
        path = self.temp_path(upload_id, must_exist=False)
        try:
            await asyncio.to_thread(_write, path, offset, data)
        except FileNotFoundError as exc:
            raise UploadNotFound("upload not found") from exc
        except OSError as exc:
            logger.error("storage failure on upload %s: %s", upload_id, exc)
            await asyncio.to_thread(_unlink, path)
            raise StorageError(STORAGE_FAILED) from exc
        return ""

    @contextlib.asynccontextmanager
    async def assembled(self, upload_id: str, handle: str, parts: list[str]) -> AsyncIterator[Path]:
        """The whole file, as a local path to hash, sniff and scan (never serve it)."""
        del handle, parts
        yield self.temp_path(upload_id)

    def temp_path(self, upload_id: str, *, must_exist: bool = True) -> Path:
        """The temporary file of an upload (UploadNotFound if it does not exist)."""
        path = self.temp_dir / f"{upload_key(upload_id)}.part"
        if must_exist and not path.exists():
            raise UploadNotFound("upload not found")
        return path

    async def publish(self, upload_id: str, handle: str) -> str:
        """Move the complete temporary file into ``upload_dir``; return its stored name
        (server-generated, 32 hex digits). Raises StorageError (temporary file
        removed) when the move fails."""
        del handle
        source = self.temp_path(upload_id)
        stored_name = uuid.uuid4().hex
        try:
            await asyncio.to_thread(_publish, source, self.upload_dir / stored_name)
        except OSError as exc:
            logger.error("cannot publish upload %s: %s", upload_id, exc)
            await asyncio.to_thread(_unlink, source)
            raise StorageError(STORAGE_FAILED) from exc
        return stored_name

    async def discard(self, upload_id: str, handle: str) -> None:
        """Remove the upload's temporary file. Idempotent."""
        del handle
        await asyncio.to_thread(_unlink, self.temp_path(upload_id, must_exist=False))

    async def sweep_temp(self, older_than: float) -> int:
        """Remove ``*.part`` files in ``temp_dir`` untouched for ``older_than``
        seconds (left behind when an upload's record went without its file). Safe
        on a directory shared by several processes as long as ``older_than`` is
        well above the upload timeout. Returns how many were removed."""
        return await sweep_dir(self.temp_dir, "*.part", older_than)

    # ---- published files ------------------------------------------------------

    def published_path(self, stored_name: str) -> Path:
        """Path of a published file. Raises UploadNotFound for a name that is not
        one ``publish`` could have produced (path separators, dots …)."""
        return self.upload_dir / check_stored_name(stored_name)

    def open_published(self, stored_name: str) -> BinaryIO:
        """Open a published file for reading (blocking; call it in a thread).
        Raises UploadNotFound when the name is invalid or the file is gone."""
        path = self.published_path(stored_name)
        try:
            return path.open("rb")
        except FileNotFoundError as exc:
            raise UploadNotFound("file not found") from exc

    async def delete_published(self, stored_name: str) -> None:
        """Remove a published file. Idempotent."""
        path = self.published_path(stored_name)
        await asyncio.to_thread(path.unlink, missing_ok=True)


# Everything below runs in a worker thread.


def _create(path: Path, size: int) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def _write(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(fd, view[written:], offset + written)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _publish(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Different filesystems: copy beside the target, then rename into place.
        partial = target.with_name(f".{target.name}.partial")
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        source.unlink(missing_ok=True)


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.error("cannot remove %s: %s", path, exc)


async def sweep_dir(directory: Path, pattern: str, older_than: float) -> int:
    """Remove the files matching ``pattern`` untouched for ``older_than`` seconds."""
    return await asyncio.to_thread(_sweep, directory, pattern, time.time() - older_than)


def _sweep(temp_dir: Path, pattern: str, cutoff: float) -> int:
    removed = 0
    for path in temp_dir.glob(pattern):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed
