"""LocalStorage specifics: durable positional writes in bounded memory, publish by
rename (or copy across filesystems), refusals. The behaviour it shares with the S3
storage is in tests/contract/test_upload_storage_contract.py."""

from __future__ import annotations

import errno
import os
import random
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest

from chinwag.files.storage import LocalStorage
from chinwag.protocol.errors import StorageError, UploadNotFound

CHUNK = 1024


async def _new(storage: LocalStorage, size: int) -> str:
    upload_id = str(uuid.uuid4())
    await storage.create(upload_id, size)
    return upload_id


async def test_fifty_megabytes_assemble_in_bounded_memory(storage: LocalStorage) -> None:
    size, chunk = 50 * 1024 * 1024, 1024 * 1024
    upload_id = await _new(storage, size)

    def piece(i: int) -> bytes:
        return random.Random(i).randbytes(chunk)

    tracemalloc.start()
    try:
        for index in reversed(range(size // chunk)):
            await storage.write_chunk(upload_id, "", index, index * chunk, piece(index))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    path = storage.temp_path(upload_id)
    assert path.stat().st_size == size
    with path.open("rb") as f:
        for index in range(size // chunk):
            assert f.read(chunk) == piece(index)
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while assembling {size}"


async def test_publish_moves_the_file_out_of_the_temporary_directory(
    storage: LocalStorage,
) -> None:
    upload_id = await _new(storage, 11)
    await storage.write_chunk(upload_id, "", 0, 0, b"hello world")
    temp = storage.temp_path(upload_id)
    stored = await storage.publish(upload_id, "")
    assert not temp.exists()
    assert storage.published_path(stored).parent == storage.upload_dir
    with storage.open_published(stored) as f:
        assert f.read() == b"hello world"
    with pytest.raises(UploadNotFound):
        storage.temp_path(upload_id)


async def test_publish_across_filesystems_falls_back_to_a_copy(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"cross-device"
    upload_id = await _new(storage, len(data))
    await storage.write_chunk(upload_id, "", 0, 0, data)
    temp = storage.temp_path(upload_id)
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == temp:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    stored = await storage.publish(upload_id, "")
    assert storage.published_path(stored).read_bytes() == data
    assert not temp.exists()
    assert [p.name for p in storage.upload_dir.iterdir() if p.is_file()] == [stored]


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "a/b",
        "..",
        ".hidden",
        "/etc/passwd",
        "ABCDEF" * 6,
        "0" * 31,
        "0" * 32 + "/",
    ],
)
def test_open_published_refuses_names_publish_could_not_produce(
    storage: LocalStorage, name: str
) -> None:
    with pytest.raises(UploadNotFound):
        storage.open_published(name)


def test_open_published_of_a_missing_file_is_not_found(storage: LocalStorage) -> None:
    with pytest.raises(UploadNotFound):
        storage.open_published(uuid.uuid4().hex)


async def test_upload_ids_that_are_not_uuids_never_reach_a_path(storage: LocalStorage) -> None:
    with pytest.raises(UploadNotFound):
        await storage.create("../../x", 1)
    assert list(storage.temp_dir.iterdir()) == []


async def test_disk_full_raises_storage_error_and_removes_the_partial_file(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = await _new(storage, 2 * CHUNK)
    await storage.write_chunk(upload_id, "", 0, 0, b"a" * CHUNK)
    temp = storage.temp_path(upload_id)

    def full(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(StorageError):
        await storage.write_chunk(upload_id, "", 1, CHUNK, b"b" * CHUNK)
    assert not temp.exists()


async def test_sweep_removes_old_orphans_and_keeps_recent_files(storage: LocalStorage) -> None:
    live = await _new(storage, CHUNK)
    orphan = storage.temp_dir / f"{uuid.uuid4().hex}.part"
    orphan.write_bytes(b"left by a crash")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    assert await storage.sweep_temp(older_than=3600) == 1
    assert not orphan.exists()
    assert storage.temp_path(live).exists()
