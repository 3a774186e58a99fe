"""Chunked upload assembly: init -> chunk* -> finalize, per SPEC §7 and §11.

Invariants:

- State lives in the database (``UploadStore``) and the bytes in a storage every
  process reaches, keyed by ``file_id`` and owned by a user name, never by a
  connection or a process: an upload survives its owner's disconnect and a restart,
  and any process resumes it until ``upload_timeout`` seconds pass without activity.
- Someone else's ``file_id`` is indistinguishable from an unknown one
  (UPLOAD_NOT_FOUND).
- A file is published only after its checksum, its content sniff, its archive
  members and the virus scan all passed. Before that nothing serves it.
- Finalize runs once per upload across the cluster: it starts with a claim in the
  database that one caller wins. A claim left by a process that died expires
  after ``finalize_lease`` seconds.
- Per-user limits count uploads in progress and the bytes they reserve (their
  declared sizes), checked and reserved in one transaction.

The frame models already guarantee the types and signs of every field (and a
bare lower-case hex checksum); this module checks what depends on the upload.
The caller checks room membership; this module knows no rooms or sockets, and
takes the state store, the byte storage and the scanner it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chinwag.core.upload_checks import check_assembled
from chinwag.core.upload_chunks import checked_chunk, progress
from chinwag.files import policy
from chinwag.files.scanner import Scanner
from chinwag.protocol.errors import (
    ChecksumMismatch,
    FileTooLarge,
    FileTypeNotAllowed,
    IncompleteUpload,
    InvalidMessage,
    StorageError,
    UploadLimit,
    UploadNotFound,
    VirusDetected,
)
from chinwag.store.files import UploadRecord, UploadStore

logger = logging.getLogger(__name__)

#: At most this many indexes are listed in INCOMPLETE_UPLOAD / status replies.
MAX_LISTED_CHUNKS = 1000


class Storage(Protocol):
    """Where upload bytes live (``chinwag.files.storage.LocalStorage``,
    ``chinwag.files.s3.S3Storage``). ``handle`` is what ``create`` returned;
    ``write_chunk`` returns the token ``assembled`` needs for that chunk."""

    async def create(self, upload_id: str, size: int) -> str: ...
    async def write_chunk(
        self, upload_id: str, handle: str, index: int, offset: int, data: bytes
    ) -> str: ...
    def assembled(
        self, upload_id: str, handle: str, parts: list[str]
    ) -> AbstractAsyncContextManager[Path]: ...
    async def publish(self, upload_id: str, handle: str) -> str: ...
    async def discard(self, upload_id: str, handle: str) -> None: ...
    async def delete_published(self, stored_name: str) -> None: ...
    async def sweep_temp(self, older_than: float) -> int: ...


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_file_size: int
    max_chunk_size: int
    upload_timeout: float
    max_uploads_per_user: int
    max_temp_bytes_per_user: int
    finalize_lease: float = 600.0


@dataclass(frozen=True, slots=True)
class FinalizedUpload:
    """A published file; ``stored_name`` is what the storage serves it by."""

    file_id: str
    owner: str
    room_id: str | None
    file_name: str  # sanitised
    file_size: int
    mime_type: str  # from the extension, not the client
    checksum: str  # lower-case hex SHA-256
    stored_name: str


class UploadManager:
    """Upload state machine. Public methods raise ``ChatError`` subclasses only
    (StorageError from the storage also forgets the upload)."""

    def __init__(
        self,
        state: UploadStore,
        storage: Storage,
        scanner: Scanner,
        limits: UploadLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limits.max_chunk_size < 1 or limits.max_file_size < 0 or limits.upload_timeout <= 0:
            raise ValueError("UploadManager: sizes and timeout must be positive")
        self._state = state
        self._storage = storage
        self._scanner = scanner
        self._limits = limits
        self._clock = clock
        self._completed = 0

    async def in_progress(self) -> int:
        """Uploads initialised and neither finalized, discarded nor expired (cluster-wide)."""
        return await self._state.count()

    @property
    def completed(self) -> int:
        """Uploads this process published since start."""
        return self._completed

    # ---- the three steps ------------------------------------------------------

    async def init(
        self, owner: str, file_name: str, file_size: int, mime_type: str | None, room_id: str | None
    ) -> dict[str, Any]:
        """Start an upload; return the SPEC's init reply data.

        ``mime_type`` (the client's claim) is ignored: the stored type follows the
        extension. Raises FILE_TOO_LARGE, FILE_TYPE_NOT_ALLOWED, UPLOAD_LIMIT,
        STORAGE_ERROR.
        """
        del mime_type  # never trusted; see policy.mime_for
        limits = self._limits
        if file_size > limits.max_file_size:
            raise FileTooLarge(
                f"the file is larger than {limits.max_file_size} bytes",
                details={"max_file_size": limits.max_file_size},
            )
        name = policy.sanitize_filename(file_name)
        extension = policy.check_extension(name)
        file_id = str(uuid.uuid4())
        chunk_size = limits.max_chunk_size
        total_chunks = -(-file_size // chunk_size)
        handle = await self._storage.create(file_id, file_size)
        record = UploadRecord(
            file_id,
            owner,
            room_id,
            name,
            extension,
            file_size,
            chunk_size,
            total_chunks,
            handle,
            self._clock(),
        )
        try:
            reserved = await self._state.reserve(
                record, limits.max_uploads_per_user, limits.max_temp_bytes_per_user
            )
        except BaseException:
            await self._storage.discard(file_id, handle)
            raise
        if not reserved.inserted:
            await self._storage.discard(file_id, handle)
            if reserved.uploads >= limits.max_uploads_per_user:
                raise UploadLimit(
                    "too many uploads in progress; finish or abandon one first",
                    details={"max_uploads": limits.max_uploads_per_user},
                )
            raise UploadLimit(
                "too many bytes in uploads in progress; finish one first",
                details={
                    "max_bytes": limits.max_temp_bytes_per_user,
                    "reserved": reserved.reserved_bytes,
                },
            )
        return {
            "upload_type": "init",
            "file_id": file_id,
            "chunk_size": chunk_size,
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

        A chunk received before is accepted again without being rewritten.
        Raises UPLOAD_NOT_FOUND, INVALID_MESSAGE, CHUNK_TOO_LARGE, STORAGE_ERROR.
        """
        upload = await self._lookup(owner, file_id)
        offset, data = checked_chunk(upload, chunk_index, total_chunks, chunk_data_b64)
        token = ""
        if not await self._state.has_chunk(file_id, chunk_index):
            try:
                token = await self._storage.write_chunk(
                    file_id, upload.handle, chunk_index, offset, data
                )
            except StorageError:
                await self._forget(upload)
                raise
        # The first record of an index wins: a duplicate written meanwhile by
        # another process carried the same index and, checked at finalize, the same bytes.
        received = await self._state.record_chunk(file_id, chunk_index, token, self._clock())
        return {
            "upload_type": "chunk",
            "file_id": file_id,
            "chunk_index": chunk_index,
            "received_chunks": received,
            "total_chunks": upload.total_chunks,
            "progress": progress(received, upload.total_chunks),
        }

    async def status(self, owner: str, file_id: str) -> dict[str, Any]:
        """What was received so far (to resume after a reconnect). Counts as activity."""
        upload = await self._lookup(owner, file_id)
        await self._state.touch(file_id, self._clock())
        received = sorted(await self._state.chunks(file_id))
        return {
            "upload_type": "status",
            "file_id": file_id,
            "file_name": upload.file_name,
            "file_size": upload.file_size,
            "chunk_size": upload.chunk_size,
            "received_chunks": received,
            "total_chunks": upload.total_chunks,
            "progress": progress(len(received), upload.total_chunks),
        }

    async def finalize(self, owner: str, file_id: str, checksum: str) -> FinalizedUpload:
        """Verify, scan and publish the upload; ``checksum`` is bare lower-case hex.

        Order: completeness (INCOMPLETE_UPLOAD, upload kept), the claim
        (INVALID_MESSAGE while another finalize of it runs anywhere), checksum
        (CHECKSUM_MISMATCH, upload discarded), content sniff and archive member
        sizes (FILE_TYPE_NOT_ALLOWED, discarded), virus scan (VIRUS_DETECTED,
        discarded; SCAN_UNAVAILABLE, kept unpublished so finalize can be retried
        until the upload times out), then publish.

        Zip containers (zip, docx, xlsx, pptx, odt, ods, odp) whose members declare
        more than ``max_file_size`` bytes, and gzip files whose trailer does, are
        FILE_TYPE_NOT_ALLOWED: clamd would scan such members only partly and answer
        OK, and retrying cannot help, so SCAN_UNAVAILABLE would mislead.
        """
        upload = await self._lookup(owner, file_id)
        parts = await self._state.chunks(file_id)
        missing = [i for i in range(upload.total_chunks) if i not in parts]
        now = self._clock()
        if missing:
            if not await self._state.touch(file_id, now):  # finalized meanwhile elsewhere
                raise UploadNotFound("upload not found; start a new one")
            raise IncompleteUpload(
                f"{len(missing)} chunks are missing",
                details={
                    "missing_chunks": missing[:MAX_LISTED_CHUNKS],
                    "missing_count": len(missing),
                },
            )
        if not await self._state.claim(file_id, now, now - self._limits.finalize_lease):
            raise InvalidMessage(
                "this upload is already being finalized", details={"field": "file_id"}
            )
        try:
            tokens = [parts[i] for i in range(upload.total_chunks)]
            async with self._storage.assembled(file_id, upload.handle, tokens) as path:
                await check_assembled(
                    upload, path, checksum, self._scanner, self._limits.max_file_size
                )
            stored_name = await self._storage.publish(file_id, upload.handle)
        except (ChecksumMismatch, FileTypeNotAllowed, VirusDetected, StorageError):
            await self._forget(upload)
            raise
        except BaseException:
            # SCAN_UNAVAILABLE, a cancelled caller …: keep the upload for a retry.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._state.release(file_id, self._clock()))
            raise
        await self._state.delete(file_id)
        self._completed += 1
        logger.info("upload %s by %s published as %s", file_id, owner, stored_name)
        return FinalizedUpload(
            file_id=file_id,
            owner=owner,
            room_id=upload.room_id,
            file_name=upload.file_name,
            file_size=upload.file_size,
            mime_type=policy.mime_for(upload.extension),
            checksum=checksum,
            stored_name=stored_name,
        )

    async def is_new_chunk(self, owner: str, file_id: str, chunk_index: int) -> bool:
        """True when ``chunk`` would write bytes: the owner's upload is in progress and
        that chunk has not been received. Only such chunks are free of the frame rate
        limit; a repeat writes nothing and costs a frame like any other."""
        upload = await self._state.get(file_id)
        return (
            upload is not None
            and upload.owner == owner
            and upload.finalizing_since is None
            and 0 <= chunk_index < upload.total_chunks
            and not await self._state.has_chunk(file_id, chunk_index)
        )

    async def room_of(self, owner: str, file_id: str) -> str | None:
        """The room an upload in progress is for (UPLOAD_NOT_FOUND if unknown)."""
        return (await self._lookup(owner, file_id)).room_id

    async def unpublish(self, stored_name: str) -> None:
        """Delete a file ``finalize`` published when the caller cannot record it (the
        database failed, or the uploader left the room meanwhile)."""
        if await self.delete_published(stored_name):
            self._completed -= 1

    async def delete_published(self, stored_name: str) -> bool:
        """Delete a published file's bytes; False (and logged) when that fails."""
        try:
            await self._storage.delete_published(stored_name)
        except Exception:
            logger.exception("cannot delete the published file %s", stored_name)
            return False
        return True

    async def abort(self, owner: str, file_id: str) -> None:
        """Forget an upload and delete its bytes (UPLOAD_NOT_FOUND if unknown)."""
        upload = await self._lookup(owner, file_id)
        if upload.finalizing_since is not None:
            raise InvalidMessage("this upload is being finalized", details={"field": "file_id"})
        await self._forget(upload)

    # ---- housekeeping -----------------------------------------------------------

    async def expire(self, now: float | None = None) -> list[str]:
        """Remove uploads idle for more than ``upload_timeout`` seconds (by ``clock``)
        and their bytes. Any process may run it: each upload expires once.
        Returns the expired file_ids."""
        now = self._clock() if now is None else now
        stale = await self._state.take_expired(
            now - self._limits.upload_timeout, now - self._limits.finalize_lease
        )
        for upload in stale:
            logger.info("upload %s by %s expired", upload.file_id, upload.owner)
            await self._discard(upload)
        await self._sweep()
        return [u.file_id for u in stale]

    async def _sweep(self) -> None:
        """Remove temporary files no upload record owns (left by a crash). Twice the
        timeout: ``status`` keeps an upload alive without touching its file."""
        try:
            removed = await self._storage.sweep_temp(2 * self._limits.upload_timeout)
        except OSError as exc:
            logger.warning("cannot sweep the temporary directory: %s", exc)
            return
        if removed:
            logger.info("removed %d abandoned temporary upload files", removed)

    # ---- internals ----------------------------------------------------------------

    async def _lookup(self, owner: str, file_id: str) -> UploadRecord:
        upload = await self._state.get(file_id)
        if upload is None or upload.owner != owner:
            raise UploadNotFound("upload not found; start a new one")
        return upload

    async def _forget(self, upload: UploadRecord) -> None:
        if await self._state.delete(upload.file_id):
            await self._discard(upload)

    async def _discard(self, upload: UploadRecord) -> None:
        try:
            await self._storage.discard(upload.file_id, upload.handle)
        except StorageError:
            logger.warning("cannot remove the bytes of upload %s", upload.file_id)
