"""UploadManager.finalize: what an assembled upload must pass before it is
published, also against a real clamd."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import pytest

from chinwag.core.uploads import UploadManager
from chinwag.files.scanner import ClamdScanner
from chinwag.files.storage import LocalStorage
from chinwag.protocol.errors import (
    ChecksumMismatch,
    FileTypeNotAllowed,
    IncompleteUpload,
    InvalidMessage,
    ScanUnavailable,
    StorageError,
    UploadNotFound,
    VirusDetected,
)
from tests.clamd_fixture import Clamd

from .upload_helpers import (
    ALICE,
    PNG,
    FakeScanner,
    MakeManager,
    b64,
    pieces,
    send_all,
    sha,
    start,
    upload,
)

# ---- finalize errors --------------------------------------------------------------------


async def test_missing_chunks_are_incomplete_upload_with_their_indexes(
    manager: UploadManager,
) -> None:
    data = PNG * 3  # 8 chunks
    file_id = await start(manager, data)
    parts = pieces(data)
    for index in (0, 2, 3, 7):
        await manager.chunk(ALICE, file_id, index, len(parts), b64(parts[index]))
    with pytest.raises(IncompleteUpload) as caught:
        await manager.finalize(ALICE, file_id, sha(data))
    assert caught.value.details["missing_chunks"] == [1, 4, 5, 6]
    for index in (1, 4, 5, 6):  # the upload stays: send what is missing, finalize again
        await manager.chunk(ALICE, file_id, index, len(parts), b64(parts[index]))
    await manager.finalize(ALICE, file_id, sha(data))


async def test_checksum_mismatch_discards_the_upload(
    manager: UploadManager, storage: LocalStorage
) -> None:
    file_id = await start(manager, PNG)
    await send_all(manager, file_id, PNG)
    with pytest.raises(ChecksumMismatch):
        await manager.finalize(ALICE, file_id, sha(b"something else"))
    with pytest.raises(UploadNotFound):
        await manager.status(ALICE, file_id)
    assert list(storage.temp_dir.iterdir()) == []
    assert list(storage.upload_dir.iterdir()) == []


async def test_png_that_is_really_an_executable_is_file_type_not_allowed(
    manager: UploadManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    elf = b"\x7fELF\x02\x01\x01" + bytes(2000)
    with pytest.raises(FileTypeNotAllowed):
        await upload(manager, elf, name="cat.png")
    assert scanner.scanned == []
    assert await manager.in_progress() == 0
    assert list(storage.temp_dir.iterdir()) == []
    assert list(storage.upload_dir.iterdir()) == []


async def test_text_file_with_binary_content_is_file_type_not_allowed(
    manager: UploadManager,
) -> None:
    with pytest.raises(FileTypeNotAllowed):
        await upload(manager, b"a" * 2500 + b"\x00", name="notes.txt")


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["bundle.zip", "report.docx"])
async def test_zip_member_declaring_more_than_the_upload_limit_is_file_type_not_allowed(
    make_manager: MakeManager, scanner: FakeScanner, name: str
) -> None:
    manager = make_manager(scanner, max_file_size=1_000_000)
    data = _zip_bytes({"zeros.bin": bytes(2_000_000)})
    assert len(data) < 1_000_000
    with pytest.raises(FileTypeNotAllowed):
        await upload(manager, data, name=name)
    assert scanner.scanned == []


async def test_virus_detected_deletes_the_file(
    manager: UploadManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    scanner.error = VirusDetected("the virus scan rejected this file")
    with pytest.raises(VirusDetected):
        await upload(manager, PNG)
    assert await manager.in_progress() == 0
    assert list(storage.temp_dir.iterdir()) == []
    assert list(storage.upload_dir.iterdir()) == []


async def test_scan_unavailable_publishes_nothing_and_finalize_can_be_retried(
    manager: UploadManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    scanner.error = ScanUnavailable("the virus scanner is unavailable")
    file_id = await start(manager, PNG)
    await send_all(manager, file_id, PNG)
    with pytest.raises(ScanUnavailable):
        await manager.finalize(ALICE, file_id, sha(PNG))
    assert list(storage.upload_dir.iterdir()) == []
    assert (await manager.status(ALICE, file_id))["received_chunks"] == [0, 1, 2]
    scanner.error = None
    done = await manager.finalize(ALICE, file_id, sha(PNG))
    assert storage.published_path(done.stored_name).read_bytes() == PNG


async def test_a_second_finalize_during_the_scan_is_refused(
    manager: UploadManager, scanner: FakeScanner
) -> None:
    file_id = await start(manager, PNG)
    await send_all(manager, file_id, PNG)
    scanner.gate = asyncio.Event()
    first = asyncio.create_task(manager.finalize(ALICE, file_id, sha(PNG)))
    try:
        async with asyncio.timeout(5):
            await scanner.entered.wait()
        with pytest.raises(InvalidMessage):
            await manager.finalize(ALICE, file_id, sha(PNG))
    finally:
        scanner.gate.set()
        async with asyncio.timeout(5):
            done = await first
    assert done.file_id == file_id


async def test_publish_failure_is_storage_error_and_forgets_the_upload(
    manager: UploadManager, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = await start(manager, PNG)
    await send_all(manager, file_id, PNG)

    async def broken(upload_id: str, handle: str) -> str:
        raise StorageError("disk full")

    monkeypatch.setattr(storage, "publish", broken)
    with pytest.raises(StorageError):
        await manager.finalize(ALICE, file_id, sha(PNG))
    assert await manager.in_progress() == 0
    assert list(storage.temp_dir.iterdir()) == []


# ---- with a real clamd ---------------------------------------------------------------------


async def test_real_clamd_rejects_eicar_and_nothing_is_published(
    make_manager: MakeManager, storage: LocalStorage, clamd: Clamd, eicar: bytes
) -> None:
    manager = make_manager(ClamdScanner(socket_path=str(clamd.socket_path), timeout=30.0))
    with pytest.raises(VirusDetected):
        await upload(manager, eicar, name="readme.txt")
    assert list(storage.upload_dir.iterdir()) == []
    assert list(storage.temp_dir.iterdir()) == []
    done = await upload(manager, b"harmless text\n", name="readme.txt")
    assert storage.published_path(done.stored_name).exists()


async def test_zip_trap_oversized_member_passes_clamd_but_not_the_manager(
    make_manager: MakeManager, storage: LocalStorage, clamd: Clamd, eicar: bytes, tmp_path: Path
) -> None:
    # A 70 MB member (over clamd's MaxFileSize 64M) with EICAR at its end: clamd
    # scans the member only partly and answers OK, so the manager must refuse it.
    scanner = ClamdScanner(socket_path=str(clamd.socket_path), timeout=30.0)
    data = _zip_bytes({"data.bin": bytes(70 * 1024 * 1024) + eicar})
    probe = tmp_path / "probe.zip"
    probe.write_bytes(data)
    await scanner.scan(probe)  # the trap: "clean"

    manager = make_manager(scanner, max_file_size=50 * 1024 * 1024, max_chunk_size=1024 * 1024)
    with pytest.raises(FileTypeNotAllowed):
        await upload(manager, data, name="innocent.zip")
    assert list(storage.upload_dir.iterdir()) == []
