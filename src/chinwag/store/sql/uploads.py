"""Uploads in progress: one row per upload, one per received chunk.

Several processes share these rows, so every decision that must happen once (a
chunk's first copy, the finalize claim, an expiry) is one conditional statement
whose row count says who won."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult

from chinwag.store.files import Reservation, UploadRecord
from chinwag.store.sql.database import Database
from chinwag.store.sql.tables import Upload, UploadPart


def _record(row: Upload) -> UploadRecord:
    return UploadRecord(
        row.file_id,
        row.owner,
        row.room_id,
        row.file_name,
        row.extension,
        row.file_size,
        row.chunk_size,
        row.total_chunks,
        row.handle,
        row.last_active,
        row.finalizing_since,
    )


def _not_claimed_since(stale_before: float) -> Any:
    return or_(Upload.finalizing_since.is_(None), Upload.finalizing_since < stale_before)


class SqlUploads:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = sqlite_insert if db.is_sqlite else pg_insert

    async def reserve(self, record: UploadRecord, max_uploads: int, max_bytes: int) -> Reservation:
        async with self._db.write() as s:
            if not self._db.is_sqlite:
                # Two processes reserving for one owner at once: one waits for the other.
                await s.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:owner))"), {"owner": record.owner}
                )
            count, reserved = (
                await s.execute(
                    select(func.count(), func.coalesce(func.sum(Upload.file_size), 0)).where(
                        Upload.owner == record.owner
                    )
                )
            ).one()
            inserted = count < max_uploads and reserved + record.file_size <= max_bytes
            if inserted:
                s.add(
                    Upload(
                        file_id=record.file_id,
                        owner=record.owner,
                        room_id=record.room_id,
                        file_name=record.file_name,
                        extension=record.extension,
                        file_size=record.file_size,
                        chunk_size=record.chunk_size,
                        total_chunks=record.total_chunks,
                        handle=record.handle,
                        last_active=record.last_active,
                    )
                )
            return Reservation(inserted, int(count), int(reserved))

    async def get(self, file_id: str) -> UploadRecord | None:
        async with self._db.read() as s:
            row = await s.get(Upload, file_id)
            return _record(row) if row else None

    async def has_chunk(self, file_id: str, index: int) -> bool:
        async with self._db.read() as s:
            return await s.get(UploadPart, (file_id, index)) is not None

    async def record_chunk(self, file_id: str, index: int, token: str, now: float) -> int:
        async with self._db.write() as s:
            await s.execute(
                self._insert(UploadPart)
                .values(file_id=file_id, chunk_index=index, token=token)
                .on_conflict_do_nothing()
            )
            await s.execute(update(Upload).where(Upload.file_id == file_id).values(last_active=now))
            return int(
                await s.scalar(
                    select(func.count())
                    .select_from(UploadPart)
                    .where(UploadPart.file_id == file_id)
                )
                or 0
            )

    async def chunks(self, file_id: str) -> dict[int, str]:
        async with self._db.read() as s:
            rows = await s.execute(
                select(UploadPart.chunk_index, UploadPart.token).where(
                    UploadPart.file_id == file_id
                )
            )
            return {int(index): str(token) for index, token in rows}

    async def touch(self, file_id: str, now: float) -> bool:
        async with self._db.write() as s:
            return (
                _count(
                    await s.execute(
                        update(Upload).where(Upload.file_id == file_id).values(last_active=now)
                    )
                )
                == 1
            )

    async def claim(self, file_id: str, now: float, stale_before: float) -> bool:
        async with self._db.write() as s:
            result = await s.execute(
                update(Upload)
                .where(Upload.file_id == file_id, _not_claimed_since(stale_before))
                .values(finalizing_since=now, last_active=now)
            )
            return _count(result) == 1

    async def release(self, file_id: str, now: float) -> None:
        async with self._db.write() as s:
            await s.execute(
                update(Upload)
                .where(Upload.file_id == file_id)
                .values(finalizing_since=None, last_active=now)
            )

    async def delete(self, file_id: str) -> bool:
        async with self._db.write() as s:
            await s.execute(delete(UploadPart).where(UploadPart.file_id == file_id))
            result = await s.execute(delete(Upload).where(Upload.file_id == file_id))
            return _count(result) == 1

    async def take_expired(self, idle_before: float, stale_before: float) -> list[UploadRecord]:
        async with self._db.write() as s:
            rows = list(
                await s.scalars(
                    delete(Upload)
                    .where(Upload.last_active < idle_before, _not_claimed_since(stale_before))
                    .returning(Upload)
                )
            )
            if rows:
                await s.execute(
                    delete(UploadPart).where(UploadPart.file_id.in_([r.file_id for r in rows]))
                )
            return [_record(r) for r in rows]

    async def count(self) -> int:
        async with self._db.read() as s:
            return int(await s.scalar(select(func.count()).select_from(Upload)) or 0)


def _count(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
