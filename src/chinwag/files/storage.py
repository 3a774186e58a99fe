"""Where upload bytes live: one temporary file per upload, then a published file.

Invariants:

- No client input ever reaches a path. Temporary files are named after the
  upload's UUID, published files after a fresh ``uuid4().hex``; ``open_published``
  refuses any other name.
- Memory stays bounded whatever the file size: chunks are written where they
  belong (``os.pwrite``) and the SHA-256 is advanced over the contiguous prefix
  received so far, reading already-written later chunks back in bounded pieces.
- Only ``publish`` puts a file in ``upload_dir``; everything else (in progress,
  unscanned, rejected) stays in ``temp_dir``, which is never served.
- All file work runs in threads, one at a time per upload (a per-upload lock), so
  a cancelled caller can never leave two writers on one file.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from chinwag.protocol.errors import StorageError, UploadNotFound

if TYPE_CHECKING:
    from hashlib import _Hash

logger = logging.getLogger(__name__)

_STORED_NAME = re.compile(r"[0-9a-f]{32}")
_READ_PIECE = 1 << 20  # bytes read back at a time while advancing the hash
_STORAGE_FAILED = "the server could not store the file; try again later"


@dataclass(eq=False)
class _TempFile:
    path: Path
    fd: int
    size: int
    chunk_size: int
    hasher: _Hash = field(default_factory=hashlib.sha256)
    hashed: int = 0  # bytes [0, hashed) are in the hasher
    pending: dict[int, int] = field(default_factory=dict)  # written ranges past it: start -> end
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False


class UploadStorage:
    """Temporary files for uploads in progress and the published files.

    ``temp_dir`` and ``upload_dir`` should be on one filesystem so publishing is a
    rename; otherwise ``publish`` falls back to a copy.
    """

    def __init__(self, upload_dir: Path, temp_dir: Path) -> None:
        self.upload_dir = Path(upload_dir)
        self.temp_dir = Path(temp_dir)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, _TempFile] = {}

    # ---- uploads in progress -------------------------------------------------

    async def create(self, upload_id: str, size: int, chunk_size: int) -> None:
        """Create the empty temporary file for an upload of ``size`` bytes sent in
        chunks of ``chunk_size`` (the last may be shorter). Raises StorageError."""
        if size < 0 or chunk_size < 1:
            raise ValueError("size must be >= 0 and chunk_size >= 1")
        key = _key(upload_id)
        if key in self._files:
            raise ValueError(f"upload {upload_id} already exists")
        path = self.temp_dir / f"{key}.part"
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            logger.error("cannot create %s: %s", path, exc)
            raise StorageError(_STORAGE_FAILED) from exc
        self._files[key] = _TempFile(path=path, fd=fd, size=size, chunk_size=chunk_size)

    async def write_chunk(self, upload_id: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (a multiple of the chunk size).

        Chunks may come in any order and more than once; a range already covered
        by the hash is not written again. On an OSError (disk full …) the
        temporary file is removed, the upload forgotten and StorageError raised.
        """
        tf = self._get(upload_id)
        end = offset + len(data)
        if offset < 0 or offset % tf.chunk_size or end > tf.size:
            raise ValueError(f"bad chunk range [{offset}, {end}) for a {tf.size}-byte upload")
        await self._run(upload_id, tf, _write_and_advance, tf, offset, data)

    async def digest(self, upload_id: str) -> str | None:
        """Hex SHA-256 of the file once every byte was written, else None."""
        tf = self._get(upload_id)
        return await asyncio.to_thread(_digest, tf)

    def temp_path(self, upload_id: str) -> Path:
        """The temporary file (for sniffing and scanning; never serve it)."""
        return self._get(upload_id).path

    async def publish(self, upload_id: str) -> str:
        """Move the complete temporary file into ``upload_dir``; return its stored name.

        The stored name is server-generated (32 hex digits). Raises StorageError
        (temporary file removed) when the move fails.
        """
        tf = self._get(upload_id)
        stored_name = uuid.uuid4().hex
        await self._run(upload_id, tf, _publish, tf, self.upload_dir / stored_name)
        self._files.pop(_key(upload_id), None)
        return stored_name

    async def discard(self, upload_id: str) -> None:
        """Remove the upload's temporary file. Idempotent."""
        tf = self._files.pop(_key(upload_id), None)
        if tf is not None:
            await asyncio.to_thread(_close_and_unlink, tf)

    async def close(self) -> None:
        """Discard every upload in progress (their state lives only in memory)."""
        for upload_id in list(self._files):
            await self.discard(upload_id)

    async def sweep_temp(self, older_than: float) -> int:
        """Remove ``*.part`` files in ``temp_dir`` untouched for ``older_than``
        seconds that belong to no upload of this process (left by a crash or a
        restart). Safe on a directory shared by several processes as long as
        ``older_than`` is at least the upload timeout. Returns how many were removed.
        """
        active = {tf.path for tf in self._files.values()}
        return await asyncio.to_thread(_sweep, self.temp_dir, active, time.time() - older_than)

    # ---- published files ------------------------------------------------------

    def published_path(self, stored_name: str) -> Path:
        """Path of a published file. Raises UploadNotFound for a name that is not
        one ``publish`` could have produced (path separators, dots …)."""
        if not _STORED_NAME.fullmatch(stored_name):
            raise UploadNotFound("file not found")
        return self.upload_dir / stored_name

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

    # ---- internals -------------------------------------------------------------

    def _get(self, upload_id: str) -> _TempFile:
        tf = self._files.get(_key(upload_id))
        if tf is None:
            raise UploadNotFound("upload not found")
        return tf

    async def _run(
        self, upload_id: str, tf: _TempFile, fn: Callable[..., None], *args: object
    ) -> None:
        try:
            await asyncio.to_thread(fn, *args)
        except OSError as exc:
            logger.error("storage failure on upload %s: %s", upload_id, exc)
            self._files.pop(_key(upload_id), None)
            await asyncio.to_thread(_close_and_unlink, tf)
            raise StorageError(_STORAGE_FAILED) from exc


def _key(upload_id: str) -> str:
    try:
        return uuid.UUID(upload_id).hex
    except (ValueError, AttributeError, TypeError) as exc:
        raise UploadNotFound("upload not found") from exc


# Everything below runs in a worker thread, under the temp file's lock.


def _write_and_advance(tf: _TempFile, offset: int, data: bytes) -> None:
    with tf.lock:
        if tf.closed:
            raise FileNotFoundError(errno.ENOENT, "upload was discarded", str(tf.path))
        end = offset + len(data)
        if end <= tf.hashed:
            return  # a duplicate of bytes already hashed: keep the first copy
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(tf.fd, view[written:], offset + written)
        if tf.pending.get(offset, -1) < end:
            tf.pending[offset] = end
        _advance(tf, data if offset == tf.hashed else None)


def _advance(tf: _TempFile, fresh: bytes | None) -> None:
    """Feed the hasher every contiguous pending range; ``fresh`` is the chunk that
    starts at ``tf.hashed``, if the caller still holds it (saves reading it back)."""
    while tf.hashed in tf.pending:
        end = tf.pending.pop(tf.hashed)
        if fresh is not None and tf.hashed + len(fresh) == end:
            tf.hasher.update(fresh)
            fresh = None
        else:
            pos = tf.hashed
            while pos < end:
                piece = os.pread(tf.fd, min(_READ_PIECE, end - pos), pos)
                if not piece:
                    raise OSError(errno.EIO, "short read from the temporary file", str(tf.path))
                tf.hasher.update(piece)
                pos += len(piece)
        tf.hashed = end


def _digest(tf: _TempFile) -> str | None:
    with tf.lock:
        if tf.closed or tf.hashed != tf.size:
            return None
        return tf.hasher.hexdigest()


def _publish(tf: _TempFile, target: Path) -> None:
    with tf.lock:
        if tf.closed or tf.hashed != tf.size:
            raise RuntimeError("publish of an incomplete or discarded upload")
        os.fsync(tf.fd)
        os.close(tf.fd)
        tf.closed = True
        try:
            os.replace(tf.path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Different filesystems: copy beside the target, then rename into place.
            partial = target.with_name(f".{target.name}.partial")
            try:
                shutil.copyfile(tf.path, partial)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            tf.path.unlink(missing_ok=True)


def _close_and_unlink(tf: _TempFile) -> None:
    with tf.lock:
        if not tf.closed:
            tf.closed = True
            try:
                os.close(tf.fd)
            except OSError:
                pass
        try:
            tf.path.unlink(missing_ok=True)
        except OSError as exc:
            logger.error("cannot remove %s: %s", tf.path, exc)


def _sweep(temp_dir: Path, active: set[Path], cutoff: float) -> int:
    removed = 0
    for path in temp_dir.glob("*.part"):
        if path in active:
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed
