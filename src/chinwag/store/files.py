"""What storage keeps of files: published files and uploads in progress, shared by
every process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    owner: str
    room_id: str | None
    file_name: str
    file_size: int
    mime_type: str
    checksum: str
    stored_name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An upload in progress. ``handle`` is the byte storage's own name for it (an
    S3 multipart upload id; empty for the local directory). Times are wall-clock
    seconds (``time.time()``), comparable between processes."""

    file_id: str
    owner: str
    room_id: str | None
    file_name: str
    extension: str
    file_size: int
    chunk_size: int
    total_chunks: int
    handle: str
    last_active: float
    finalizing_since: float | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``UploadStore.reserve`` found: the owner's uploads and reserved bytes
    before the new one, and whether the new one was inserted."""

    inserted: bool
    uploads: int
    reserved_bytes: int


class FileStore(Protocol):
    async def add(self, record: FileRecord) -> None: ...
    async def get(self, file_id: str) -> FileRecord | None: ...


class UploadStore(Protocol):
    """Uploads in progress, shared by every process. Each method is one transaction."""

    async def reserve(self, record: UploadRecord, max_uploads: int, max_bytes: int) -> Reservation:
        """Insert ``record`` unless its owner already holds ``max_uploads`` uploads or
        the bytes reserved would pass ``max_bytes`` (checked and inserted atomically)."""
        ...

    async def get(self, file_id: str) -> UploadRecord | None: ...
    async def has_chunk(self, file_id: str, index: int) -> bool: ...
    async def record_chunk(self, file_id: str, index: int, token: str, now: float) -> int:
        """Remember chunk ``index`` (the first record of an index wins) and the
        activity; return how many chunks are received."""
        ...

    async def chunks(self, file_id: str) -> dict[int, str]:
        """Received chunk indexes and the token the storage returned for each."""
        ...

    async def touch(self, file_id: str, now: float) -> bool:
        """Record activity; False when the upload is gone."""
        ...

    async def claim(self, file_id: str, now: float, stale_before: float) -> bool:
        """Mark the upload as being finalized; False when another finalize holds a
        claim taken after ``stale_before`` (or the upload is gone)."""
        ...

    async def release(self, file_id: str, now: float) -> None: ...
    async def delete(self, file_id: str) -> bool:
        """Forget the upload; True for the one caller that removed it."""
        ...

    async def take_expired(self, idle_before: float, stale_before: float) -> list[UploadRecord]:
        """Remove and return uploads idle since before ``idle_before`` and not held
        by a finalize claimed after ``stale_before``."""
        ...

    async def count(self) -> int: ...
