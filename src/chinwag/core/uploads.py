"""Chunked upload assembly: init -> chunk* -> finalize, per SPEC §7.

Invariants:

- State lives in memory, keyed by ``file_id`` and owned by a user name, never by
  a connection: an upload survives its owner's disconnect and can be resumed from
  any of their connections until ``upload_timeout`` seconds pass without activity.
- Someone else's ``file_id`` is indistinguishable from an unknown one
  (UPLOAD_NOT_FOUND).
- A file is published (reachable by name in ``upload_dir``) only after its
  checksum, its content sniff, its archive members and the virus scan all passed.
  Before that it exists only as a temporary file that nothing serves.
- Per-user limits count uploads in progress and the bytes they reserve (their
  declared sizes), checked and reserved without an ``await`` in between.

The caller checks room membership; this module knows no rooms, sockets or
database, and takes the storage and the scanner it is given.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chinwag.files import policy
from chinwag.files.scanner import Scanner
from chinwag.protocol.errors import (
    ChecksumMismatch,
    ChunkTooLarge,
    FileTooLarge,
    FileTypeNotAllowed,
    IncompleteUpload,
    InvalidMessage,
    StorageError,
    UploadLimit,
    UploadNotFound,
    VirusDetected,
)

logger = logging.getLogger(__name__)

#: At most this many indexes are listed in INCOMPLETE_UPLOAD / status replies.
MAX_LISTED_CHUNKS = 1000


class Storage(Protocol):
    """What the manager needs from ``chinwag.files.storage.UploadStorage``."""

    async def create(self, upload_id: str, size: int, chunk_size: int) -> None: ...
    async def write_chunk(self, upload_id: str, offset: int, data: bytes) -> None: ...
    async def digest(self, upload_id: str) -> str | None: ...
    def temp_path(self, upload_id: str) -> Path: ...
    async def publish(self, upload_id: str) -> str: ...
    async def discard(self, upload_id: str) -> None: ...
    async def sweep_temp(self, older_than: float) -> int: ...
    async def delete_published(self, stored_name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class FinalizedUpload:
    """A published file; ``stored_name`` is what ``UploadStorage.open_published`` takes."""

    file_id: str
    owner: str
    room_id: str | None
    file_name: str  # sanitised
    file_size: int
    mime_type: str  # from the extension, not the client
    checksum: str  # lower-case hex SHA-256
    stored_name: str


@dataclass(eq=False, slots=True)
class _Upload:
    file_id: str
    owner: str
    room_id: str | None
    file_name: str
    extension: str
    file_size: int
    total_chunks: int
    last_active: float
    received: set[int] = field(default_factory=set)
    finalizing: bool = False


class UploadManager:
    """Upload state machine. Public methods raise ``ChatError`` subclasses only
    (plus StorageError from the disk, which also forgets the upload)."""

    def __init__(
        self,
        storage: Storage,
        scanner: Scanner,
        *,
        max_file_size: int,
        max_chunk_size: int,
        upload_timeout: float,
        max_uploads_per_user: int,
        max_temp_bytes_per_user: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_chunk_size < 1 or max_file_size < 0 or upload_timeout <= 0:
            raise ValueError("UploadManager: sizes and timeout must be positive")
        self._storage = storage
        self._scanner = scanner
        self._max_file_size = max_file_size
        self._chunk_size = max_chunk_size
        self._timeout = upload_timeout
        self._max_uploads = max_uploads_per_user
        self._max_bytes = max_temp_bytes_per_user
        self._clock = clock
        self._uploads: dict[str, _Upload] = {}
        self._by_owner: dict[str, set[str]] = {}
        self._completed = 0

    @property
    def in_progress(self) -> int:
        """Uploads initialised and neither finalized, discarded nor expired."""
        return len(self._uploads)

    @property
    def completed(self) -> int:
        """Uploads published since start."""
        return self._completed

    # ---- the three steps ------------------------------------------------------

    async def init(
        self,
        owner: str,
        file_name: str,
        file_size: int,
        mime_type: str | None,
        room_id: str | None,
    ) -> dict[str, Any]:
        """Start an upload; return the SPEC's init reply data.

        ``mime_type`` (the client's claim) is ignored: the stored type follows the
        extension. Raises FILE_TOO_LARGE, FILE_TYPE_NOT_ALLOWED, UPLOAD_LIMIT,
        INVALID_MESSAGE, STORAGE_ERROR.
        """
        del mime_type  # never trusted; see policy.mime_for
        if isinstance(file_size, bool) or not isinstance(file_size, int) or file_size < 0:
            raise InvalidMessage(
                "file_size must be a non-negative integer", details={"field": "file_size"}
            )
        if file_size > self._max_file_size:
            raise FileTooLarge(
                f"the file is larger than {self._max_file_size} bytes",
                details={"max_file_size": self._max_file_size},
            )
        name = policy.sanitize_filename(file_name)
        extension = policy.check_extension(name)
        mine = self._by_owner.get(owner, set())
        if len(mine) >= self._max_uploads:
            raise UploadLimit(
                "too many uploads in progress; finish or abandon one first",
                details={"max_uploads": self._max_uploads},
            )
        reserved = sum(self._uploads[f].file_size for f in mine)
        if reserved + file_size > self._max_bytes:
            raise UploadLimit(
                "too many bytes in uploads in progress; finish one first",
                details={"max_bytes": self._max_bytes, "reserved": reserved},
            )
        file_id = str(uuid.uuid4())
        total_chunks = -(-file_size // self._chunk_size)
        upload = _Upload(
            file_id=file_id,
            owner=owner,
            room_id=room_id,
            file_name=name,
            extension=extension,
            file_size=file_size,
            total_chunks=total_chunks,
            last_active=self._clock(),
        )
        self._add(upload)  # reserve before the first await
        try:
            await self._storage.create(file_id, file_size, self._chunk_size)
        except BaseException:
            self._remove(upload)
            raise
        return {
            "upload_type": "init",
            "file_id": file_id,
            "chunk_size": self._chunk_size,
            "total_chunks": total_chunks,
        }

    async def chunk(
        self,
        owner: str,
        file_id: str,
        chunk_index: int,
        total_chunks: int | None,
        chunk_data_b64: str,
    ) -> dict[str, Any]:
        """Store one chunk; return the SPEC's chunk reply data.

        Every chunk but the last is exactly ``chunk_size`` bytes, the last holds the
        rest. A chunk received before is accepted again without being rewritten.
        Raises UPLOAD_NOT_FOUND, INVALID_MESSAGE, CHUNK_TOO_LARGE, STORAGE_ERROR.
        """
        upload = self._lookup(owner, file_id)
        if total_chunks is not None and total_chunks != upload.total_chunks:
            raise InvalidMessage(
                f"total_chunks must be {upload.total_chunks}",
                details={"field": "total_chunks", "expected": upload.total_chunks},
            )
        if (
            isinstance(chunk_index, bool)
            or not isinstance(chunk_index, int)
            or not 0 <= chunk_index < upload.total_chunks
        ):
            raise InvalidMessage(
                f"chunk_index must be between 0 and {upload.total_chunks - 1}",
                details={"field": "chunk_index", "total_chunks": upload.total_chunks},
            )
        data = self._decode(chunk_data_b64)
        expected = min(self._chunk_size, upload.file_size - chunk_index * self._chunk_size)
        if len(data) != expected:
            raise InvalidMessage(
                f"chunk {chunk_index} must hold {expected} bytes, not {len(data)}",
                details={"field": "chunk_data", "expected_size": expected},
            )
        upload.last_active = self._clock()
        if chunk_index not in upload.received:
            try:
                await self._storage.write_chunk(file_id, chunk_index * self._chunk_size, data)
            except StorageError:
                self._remove(upload)  # the storage already removed the temporary file
                raise
            upload.received.add(chunk_index)
        received = len(upload.received)
        return {
            "upload_type": "chunk",
            "file_id": file_id,
            "chunk_index": chunk_index,
            "received_chunks": received,
            "total_chunks": upload.total_chunks,
            "progress": _progress(received, upload.total_chunks),
        }

    def status(self, owner: str, file_id: str) -> dict[str, Any]:
        """What was received so far (to resume after a reconnect). Counts as activity."""
        upload = self._lookup(owner, file_id)
        upload.last_active = self._clock()
        received = sorted(upload.received)
        return {
            "upload_type": "status",
            "file_id": file_id,
            "file_name": upload.file_name,
            "file_size": upload.file_size,
            "chunk_size": self._chunk_size,
            "received_chunks": received,
            "total_chunks": upload.total_chunks,
            "progress": _progress(len(received), upload.total_chunks),
        }

    async def finalize(self, owner: str, file_id: str, checksum: str) -> FinalizedUpload:
        """Verify, scan and publish the upload.

        Order: completeness (INCOMPLETE_UPLOAD, upload kept), checksum
        (CHECKSUM_MISMATCH, upload discarded), content sniff and archive member
        sizes (FILE_TYPE_NOT_ALLOWED, discarded), virus scan (VIRUS_DETECTED,
        discarded; SCAN_UNAVAILABLE, kept unpublished so finalize can be retried
        until the upload times out), then publish.

        Zip containers (zip, docx, xlsx, pptx, odt, ods, odp) whose members declare
        more than ``max_file_size`` bytes, and gzip files whose trailer does, are
        FILE_TYPE_NOT_ALLOWED: clamd would scan such members only partly and answer
        OK, and retrying cannot help, so SCAN_UNAVAILABLE would mislead.
        """
        upload = self._lookup(owner, file_id)
        if upload.finalizing:
            raise InvalidMessage(
                "this upload is already being finalized", details={"field": "file_id"}
            )
        expected = _normalise_checksum(checksum)
        missing = [i for i in range(upload.total_chunks) if i not in upload.received]
        if missing:
            upload.last_active = self._clock()
            raise IncompleteUpload(
                f"{len(missing)} chunks are missing",
                details={
                    "missing_chunks": missing[:MAX_LISTED_CHUNKS],
                    "missing_count": len(missing),
                },
            )
        upload.finalizing = True
        try:
            digest = await self._storage.digest(file_id)
            if digest != expected:
                await self._drop(upload)
                raise ChecksumMismatch(
                    "the SHA-256 of the received bytes differs from the checksum; upload again",
                    details={"expected": expected, "actual": digest},
                )
            await self._check_content(upload)
            await self._scan(upload)
            stored_name = await self._publish(upload)
        finally:
            upload.finalizing = False
            upload.last_active = self._clock()
        self._completed += 1
        logger.info("upload %s by %s published as %s", file_id, owner, stored_name)
        return FinalizedUpload(
            file_id=file_id,
            owner=owner,
            room_id=upload.room_id,
            file_name=upload.file_name,
            file_size=upload.file_size,
            mime_type=policy.mime_for(upload.extension),
            checksum=expected,
            stored_name=stored_name,
        )

    def is_new_chunk(self, owner: str, file_id: str, chunk_index: int) -> bool:
        """True when ``chunk`` would write bytes: the owner's upload is in progress and
        that chunk has not been received. Only such chunks are free of the frame rate
        limit; a repeat writes nothing and costs a frame like any other."""
        upload = self._uploads.get(file_id)
        return (upload is not None and upload.owner == owner and not upload.finalizing
                and 0 <= chunk_index < upload.total_chunks
                and chunk_index not in upload.received)

    def room_of(self, owner: str, file_id: str) -> str | None:
        """The room an upload in progress is for (UPLOAD_NOT_FOUND if unknown)."""
        return self._lookup(owner, file_id).room_id

    async def unpublish(self, stored_name: str) -> None:
        """Delete a file ``finalize`` published when the caller cannot record it (the
        database failed, or the uploader left the room meanwhile)."""
        try:
            await self._storage.delete_published(stored_name)
        except Exception:
            logger.exception("cannot delete the unrecorded published file %s", stored_name)
        else:
            self._completed -= 1

    async def abort(self, owner: str, file_id: str) -> None:
        """Forget an upload and delete its temporary file (UPLOAD_NOT_FOUND if unknown)."""
        upload = self._lookup(owner, file_id)
        if upload.finalizing:
            raise InvalidMessage("this upload is being finalized", details={"field": "file_id"})
        await self._drop(upload)

    # ---- housekeeping -----------------------------------------------------------

    async def expire(self, now: float | None = None) -> list[str]:
        """Remove uploads idle for more than ``upload_timeout`` seconds (by ``clock``),
        deleting their temporary files. Returns the expired file_ids."""
        now = self._clock() if now is None else now
        stale = [
            u
            for u in self._uploads.values()
            if not u.finalizing and now - u.last_active > self._timeout
        ]
        for upload in stale:
            logger.info("upload %s by %s expired", upload.file_id, upload.owner)
            await self._drop(upload)
        await self._sweep()
        return [u.file_id for u in stale]

    async def _sweep(self) -> None:
        """Remove temporary files no upload of this process owns (left by a crash or a
        restart). Twice the timeout: another process sharing TEMP_DIR keeps an upload
        alive by ``status`` calls that do not touch its file."""
        sweep = getattr(self._storage, "sweep_temp", None)
        if sweep is None:
            return
        try:
            removed = await sweep(2 * self._timeout)
        except OSError as exc:
            logger.warning("cannot sweep the temporary directory: %s", exc)
            return
        if removed:
            logger.info("removed %d abandoned temporary upload files", removed)

    async def run_expiry(self, interval: float) -> None:
        """Call ``expire`` every ``interval`` seconds until cancelled (run it in the
        server's TaskGroup)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire()
            except Exception:
                logger.exception("upload expiry failed")

    async def close(self) -> None:
        """Drop every upload in progress (state is in memory only)."""
        for upload in list(self._uploads.values()):
            await self._drop(upload)

    # ---- internals ----------------------------------------------------------------

    def _lookup(self, owner: str, file_id: str) -> _Upload:
        upload = self._uploads.get(file_id)
        if upload is None or upload.owner != owner:
            raise UploadNotFound("upload not found; start a new one")
        return upload

    def _add(self, upload: _Upload) -> None:
        self._uploads[upload.file_id] = upload
        self._by_owner.setdefault(upload.owner, set()).add(upload.file_id)

    def _remove(self, upload: _Upload) -> None:
        if self._uploads.get(upload.file_id) is upload:
            del self._uploads[upload.file_id]
        mine = self._by_owner.get(upload.owner)
        if mine is not None:
            mine.discard(upload.file_id)
            if not mine:
                del self._by_owner[upload.owner]

    async def _drop(self, upload: _Upload) -> None:
        self._remove(upload)
        await self._storage.discard(upload.file_id)

    def _decode(self, chunk_data_b64: str) -> bytes:
        if not isinstance(chunk_data_b64, str):
            raise InvalidMessage(
                "chunk_data must be a base64 string", details={"field": "chunk_data"}
            )
        # Refuse oversized text before decoding it: 4 characters per 3 bytes.
        if len(chunk_data_b64) > 4 * -(-self._chunk_size // 3):
            raise ChunkTooLarge(
                f"a chunk may hold at most {self._chunk_size} bytes",
                details={"max_chunk_size": self._chunk_size},
            )
        try:
            data = base64.b64decode(chunk_data_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidMessage(
                "chunk_data is not valid base64", details={"field": "chunk_data"}
            ) from exc
        if len(data) > self._chunk_size:
            raise ChunkTooLarge(
                f"a chunk may hold at most {self._chunk_size} bytes",
                details={"max_chunk_size": self._chunk_size},
            )
        return data

    async def _check_content(self, upload: _Upload) -> None:
        path = self._storage.temp_path(upload.file_id)
        ext = upload.extension
        ok = await asyncio.to_thread(policy.sniff_file, ext, path)
        reason = "the content does not match the file type"
        if ok and ext in policy.ZIP_EXTENSIONS:
            ok = await asyncio.to_thread(policy.zip_declared_sizes_ok, path, self._max_file_size)
            reason = "the archive is unreadable or holds members too large to scan"
        elif ok and ext == "gz":
            ok = await asyncio.to_thread(policy.gzip_declared_size_ok, path, self._max_file_size)
            reason = "the archive holds content too large to scan"
        if not ok:
            await self._drop(upload)
            raise FileTypeNotAllowed(reason, details={"extension": ext})

    async def _scan(self, upload: _Upload) -> None:
        try:
            await self._scanner.scan(self._storage.temp_path(upload.file_id))
        except VirusDetected:
            logger.warning("upload %s by %s rejected by the scanner", upload.file_id, upload.owner)
            await self._drop(upload)
            raise
        # ScanUnavailable propagates with the upload kept: finalize may be retried.

    async def _publish(self, upload: _Upload) -> str:
        # Forget the upload first: whatever happens next, it cannot be finalized twice.
        self._remove(upload)
        try:
            return await self._storage.publish(upload.file_id)
        except BaseException:
            await self._storage.discard(upload.file_id)
            raise


def _normalise_checksum(checksum: str) -> str:
    value = checksum.strip().lower() if isinstance(checksum, str) else ""
    value = value.removeprefix("sha256:")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidMessage(
            "checksum must be the SHA-256 of the file in hex", details={"field": "checksum"}
        )
    return value


def _progress(received: int, total: int) -> float:
    return 100.0 if total == 0 else round(100.0 * received / total, 2)
