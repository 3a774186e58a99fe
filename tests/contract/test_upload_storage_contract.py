"""The byte storage of uploads, against each implementation: the local directory
and an S3-compatible store (moto's server, tests/s3_fixture.py)."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chinwag.files.s3 import S3Location, S3Storage
from chinwag.files.storage import LocalStorage
from chinwag.protocol.errors import UploadNotFound
from tests.s3_fixture import MIN_PART, S3Server

CHUNK = MIN_PART
Storage = LocalStorage | S3Storage


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "uploads", tmp_path / "tmp")
        return
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = s3.new_bucket()
    store = S3Storage(s3.client(), S3Location(bucket, "p/"), tmp_path / "tmp")
    await store.start()
    yield store


async def _published(storage: Storage, stored_name: str) -> bytes:
    if isinstance(storage, LocalStorage):
        with storage.open_published(stored_name) as f:
            return f.read()
    published = await storage.open_stream(stored_name)
    data = b"".join([piece async for piece in published.chunks])
    assert published.size == len(data)
    return data


async def _write_all(
    storage: Storage, upload_id: str, handle: str, data: bytes, order: list[int]
) -> list[str]:
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    tokens = [""] * len(pieces)
    for index in order:
        tokens[index] = await storage.write_chunk(
            upload_id, handle, index, index * CHUNK, pieces[index]
        )
    return tokens


async def test_chunks_in_any_order_assemble_to_the_right_bytes(storage: Storage) -> None:
    data = random.Random(1).randbytes(5 * CHUNK + 123)
    upload_id = str(uuid.uuid4())
    handle = await storage.create(upload_id, len(data))
    tokens = await _write_all(storage, upload_id, handle, data, [5, 0, 3, 2, 1, 4])
    async with storage.assembled(upload_id, handle, tokens) as path:
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
    stored = await storage.publish(upload_id, handle)
    assert len(stored) == 32 and all(c in "0123456789abcdef" for c in stored)
    assert await _published(storage, stored) == data


async def test_a_second_storage_object_continues_an_upload_the_first_started(
    storage: Storage, tmp_path: Path
) -> None:
    """What a second process sees: nothing but the handle and the chunk tokens."""
    data = random.Random(2).randbytes(3 * CHUNK)
    upload_id = str(uuid.uuid4())
    handle = await storage.create(upload_id, len(data))
    first = await _write_all(storage, upload_id, handle, data, [0])
    other: Storage
    if isinstance(storage, LocalStorage):
        other = LocalStorage(storage.upload_dir, storage.temp_dir)
    else:
        other = S3Storage(
            storage._s3, S3Location(storage.bucket, storage.prefix), tmp_path / "other"
        )
    rest = await _write_all(other, upload_id, handle, data, [1, 2])
    tokens = [first[0], rest[1], rest[2]]
    async with other.assembled(upload_id, handle, tokens) as path:
        assert path.read_bytes() == data
    assert await _published(other, await other.publish(upload_id, handle)) == data


async def test_an_empty_file_assembles_and_publishes(storage: Storage) -> None:
    upload_id = str(uuid.uuid4())
    handle = await storage.create(upload_id, 0)
    async with storage.assembled(upload_id, handle, []) as path:
        assert path.read_bytes() == b""
    assert await _published(storage, await storage.publish(upload_id, handle)) == b""


async def test_assembling_twice_gives_the_same_file(storage: Storage) -> None:
    """A finalize that failed after assembly (scanner down) is retried."""
    data = random.Random(3).randbytes(2 * CHUNK + 5)
    upload_id = str(uuid.uuid4())
    handle = await storage.create(upload_id, len(data))
    tokens = await _write_all(storage, upload_id, handle, data, [0, 1, 2])
    for _ in range(2):
        async with storage.assembled(upload_id, handle, tokens) as path:
            assert path.read_bytes() == data


async def test_discard_is_idempotent_and_ends_the_upload(storage: Storage) -> None:
    upload_id = str(uuid.uuid4())
    handle = await storage.create(upload_id, 2 * CHUNK)
    await storage.write_chunk(upload_id, handle, 0, 0, b"x" * CHUNK)
    await storage.discard(upload_id, handle)
    await storage.discard(upload_id, handle)
    if isinstance(storage, LocalStorage):
        assert list(storage.temp_dir.iterdir()) == []
    else:
        listed = storage._s3.list_multipart_uploads(Bucket=storage.bucket)
        assert listed.get("Uploads", []) == []
        assert storage._s3.list_objects_v2(Bucket=storage.bucket).get("Contents", []) == []


@pytest.mark.parametrize("upload_id", ["../../x", "not-a-uuid", ""])
async def test_upload_ids_that_are_not_uuids_are_not_found(
    storage: Storage, upload_id: str
) -> None:
    with pytest.raises(UploadNotFound):
        await storage.create(upload_id, 1)


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "..", "ABCDEF" * 6, "0" * 31])
async def test_stored_names_publish_could_not_produce_are_not_found(
    storage: Storage, name: str
) -> None:
    with pytest.raises(UploadNotFound):
        await storage.delete_published(name)


async def test_a_deleted_published_file_is_gone(storage: Storage) -> None:
    upload_id = str(uuid.uuid4())
    handle = await storage.create(upload_id, 3)
    tokens = [await storage.write_chunk(upload_id, handle, 0, 0, b"abc")]
    async with storage.assembled(upload_id, handle, tokens):
        pass
    stored = await storage.publish(upload_id, handle)
    await storage.delete_published(stored)
    await storage.delete_published(stored)
    with pytest.raises(UploadNotFound):
        await _published(storage, stored)
