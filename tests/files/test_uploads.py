"""UploadManager: the init -> chunk -> finalize state machine and every error code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from chinwag.core.uploads import FinalizedUpload, UploadLimits, UploadManager
from chinwag.files.scanner import ClamdScanner, Scanner
from chinwag.files.storage import LocalStorage
from chinwag.protocol.codes import ErrorCode
from chinwag.protocol.errors import (
    ChatError,
    ChecksumMismatch,
    ChunkTooLarge,
    FileTooLarge,
    FileTypeNotAllowed,
    IncompleteUpload,
    InvalidMessage,
    ScanUnavailable,
    StorageError,
    UploadLimit,
    UploadNotFound,
    VirusDetected,
)
from chinwag.store.sql import SqlStore
from tests.clamd_fixture import Clamd

CHUNK = 1000
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10  # 2568 bytes: 3 chunks
ALICE, BOB = "alice", "bob"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeScanner:
    """Records what it scanned; raises ``error`` if set; can be held at a gate."""

    def __init__(self, upload_dir: Path) -> None:
        self.upload_dir = upload_dir
        self.scanned: list[Path] = []
        self.published_at_scan: list[list[Path]] = []
        self.error: ChatError | None = None
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def scan(self, path: Path) -> None:
        self.scanned.append(path)
        self.published_at_scan.append(list(self.upload_dir.iterdir()))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error

    async def ping(self) -> bool:
        return True


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scanner(storage: LocalStorage) -> FakeScanner:
    return FakeScanner(storage.upload_dir)


MakeManager = Callable[..., UploadManager]


@pytest.fixture
def make_manager(store: SqlStore, storage: LocalStorage, clock: Clock) -> MakeManager:
    def make(scanner: Scanner, **overrides: int | float) -> UploadManager:
        settings: dict[str, int | float] = {
            "max_file_size": 50 * 1024 * 1024,
            "max_chunk_size": CHUNK,
            "upload_timeout": 3600.0,
            "max_uploads_per_user": 3,
            "max_temp_bytes_per_user": 100 * 1024 * 1024,
        }
        settings.update(overrides)
        limits = UploadLimits(
            max_file_size=int(settings["max_file_size"]),
            max_chunk_size=int(settings["max_chunk_size"]),
            upload_timeout=float(settings["upload_timeout"]),
            max_uploads_per_user=int(settings["max_uploads_per_user"]),
            max_temp_bytes_per_user=int(settings["max_temp_bytes_per_user"]),
        )
        return UploadManager(store.uploads, storage, scanner, limits, clock=clock)

    return make


@pytest.fixture
def manager(make_manager: MakeManager, scanner: FakeScanner) -> UploadManager:
    return make_manager(scanner)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pieces(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def start(
    manager: UploadManager, data: bytes, name: str = "photo.png", owner: str = ALICE
) -> str:
    reply = await manager.init(owner, name, len(data), "image/png", "room-1")
    file_id: str = reply["file_id"]
    return file_id


async def send_all(
    manager: UploadManager, file_id: str, data: bytes, owner: str = ALICE, chunk: int = CHUNK
) -> None:
    parts = pieces(data, chunk)
    for index, part in enumerate(parts):
        await manager.chunk(owner, file_id, index, len(parts), b64(part))


async def upload(
    manager: UploadManager, data: bytes, name: str = "photo.png", owner: str = ALICE
) -> FinalizedUpload:
    """init, every chunk in order (at the chunk size the server asked for), finalize."""
    reply = await manager.init(owner, name, len(data), None, "room-1")
    await send_all(manager, reply["file_id"], data, owner, reply["chunk_size"])
    return await manager.finalize(owner, reply["file_id"], sha(data))


# ---- the happy path -------------------------------------------------------------------


async def test_init_reply_matches_the_spec(manager: UploadManager) -> None:
    reply = await manager.init(ALICE, "photo.png", len(PNG), "image/png", "room-1")
    assert reply == {
        "upload_type": "init",
        "file_id": reply["file_id"],
        "chunk_size": CHUNK,
        "total_chunks": 3,
    }
    assert await manager.in_progress() == 1


async def test_out_of_order_duplicate_chunks_then_finalize_publishes_the_file(
    manager: UploadManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    file_id = await start(manager, PNG, name="../../holiday\u202e.png")
    parts = pieces(PNG)
    replies = [
        await manager.chunk(ALICE, file_id, index, 3, b64(parts[index])) for index in (2, 0, 2, 1)
    ]
    assert [r["received_chunks"] for r in replies] == [1, 2, 2, 3]
    assert replies[-1] == {
        "upload_type": "chunk",
        "file_id": file_id,
        "chunk_index": 1,
        "received_chunks": 3,
        "total_chunks": 3,
        "progress": 100.0,
    }
    assert replies[0]["progress"] == pytest.approx(33.33)

    done = await manager.finalize(ALICE, file_id, sha(PNG))
    assert done == FinalizedUpload(
        file_id=file_id,
        owner=ALICE,
        room_id="room-1",
        file_name="holiday.png",
        file_size=len(PNG),
        mime_type="image/png",
        checksum=sha(PNG),
        stored_name=done.stored_name,
    )
    with storage.open_published(done.stored_name) as f:
        assert f.read() == PNG
    assert await manager.in_progress() == 0 and manager.completed == 1
    assert list(storage.temp_dir.iterdir()) == []


async def test_scan_runs_on_the_temp_file_before_anything_is_published(
    manager: UploadManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    done = await upload(manager, PNG)
    assert len(scanner.scanned) == 1
    assert scanner.scanned[0].parent == storage.temp_dir
    assert scanner.published_at_scan == [[]]
    assert storage.published_path(done.stored_name).exists()


async def test_stored_mime_type_comes_from_the_extension_not_the_client(
    manager: UploadManager,
) -> None:
    data = b"just text\n"
    reply = await manager.init(ALICE, "notes.txt", len(data), "application/x-msdownload", None)
    await send_all(manager, reply["file_id"], data)
    done = await manager.finalize(ALICE, reply["file_id"], sha(data))
    assert done.mime_type == "text/plain"
    assert done.room_id is None


async def test_empty_text_file_has_no_chunks_and_finalizes(manager: UploadManager) -> None:
    reply = await manager.init(ALICE, "empty.txt", 0, None, None)
    assert reply["total_chunks"] == 0
    done = await manager.finalize(ALICE, reply["file_id"], sha(b""))
    assert done.file_size == 0


async def test_status_lists_received_indexes_to_resume_after_a_reconnect(
    manager: UploadManager,
) -> None:
    file_id = await start(manager, PNG)
    parts = pieces(PNG)
    await manager.chunk(ALICE, file_id, 2, 3, b64(parts[2]))
    # The connection drops here; the upload is keyed by owner, not by connection.
    status = await manager.status(ALICE, file_id)
    assert status["upload_type"] == "status"
    assert status["received_chunks"] == [2]
    assert status["total_chunks"] == 3
    assert status["chunk_size"] == CHUNK
    for index in (0, 1):
        await manager.chunk(ALICE, file_id, index, None, b64(parts[index]))
    await manager.finalize(ALICE, file_id, sha(PNG))


# ---- init errors --------------------------------------------------------------------


async def test_file_over_the_size_limit_is_file_too_large(make_manager: MakeManager) -> None:
    manager = make_manager(FakeScanner(Path()), max_file_size=1000)
    with pytest.raises(FileTooLarge) as caught:
        await manager.init(ALICE, "big.png", 1001, None, None)
    assert caught.value.code is ErrorCode.FILE_TOO_LARGE
    assert await manager.in_progress() == 0


@pytest.mark.parametrize("name", ["setup.exe", "script.sh", "passwd", "../../etc/passwd"])
async def test_extension_outside_the_list_is_file_type_not_allowed(
    manager: UploadManager, name: str
) -> None:
    with pytest.raises(FileTypeNotAllowed):
        await manager.init(ALICE, name, 10, None, None)
    assert await manager.in_progress() == 0


async def test_too_many_uploads_per_user_is_upload_limit_and_others_are_unaffected(
    manager: UploadManager,
) -> None:
    ids = [await start(manager, PNG) for _ in range(3)]
    with pytest.raises(UploadLimit):
        await start(manager, PNG)
    await start(manager, PNG, owner=BOB)
    await manager.abort(ALICE, ids[0])
    await start(manager, PNG)


async def test_too_many_reserved_bytes_per_user_is_upload_limit(
    make_manager: MakeManager, scanner: FakeScanner
) -> None:
    manager = make_manager(scanner, max_temp_bytes_per_user=6000)
    first = await start(manager, PNG)
    await start(manager, PNG)
    with pytest.raises(UploadLimit):
        await start(manager, PNG)  # 3 * 2568 > 6000
    await send_all(manager, first, PNG)
    await manager.finalize(ALICE, first, sha(PNG))
    await start(manager, PNG)  # finishing one frees its reservation


# ---- chunk errors ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["not base64!", "abc", "YWJj\n", "YW=Jj", "ÿÿÿÿ"])
async def test_bad_base64_is_invalid_message_naming_chunk_data(
    manager: UploadManager, bad: str
) -> None:
    file_id = await start(manager, PNG)
    with pytest.raises(InvalidMessage) as caught:
        await manager.chunk(ALICE, file_id, 0, 3, bad)
    assert caught.value.details["field"] == "chunk_data"


async def test_decoded_chunk_over_the_chunk_size_is_chunk_too_large(
    manager: UploadManager,
) -> None:
    file_id = await start(manager, PNG)
    with pytest.raises(ChunkTooLarge):
        await manager.chunk(ALICE, file_id, 0, 3, b64(b"x" * (CHUNK + 1)))
    with pytest.raises(ChunkTooLarge):  # refused before decoding
        await manager.chunk(ALICE, file_id, 0, 3, "A" * 10_000_000)


@pytest.mark.parametrize(("index", "total"), [(3, 3), (0, 4), (0, 0)])
async def test_index_out_of_range_or_wrong_total_is_invalid_message(
    manager: UploadManager, index: int, total: int
) -> None:
    file_id = await start(manager, PNG)
    with pytest.raises(InvalidMessage):
        await manager.chunk(ALICE, file_id, index, total, b64(b"x" * CHUNK))


@pytest.mark.parametrize(
    ("index", "size"), [(2, 567), (2, 569), (2, CHUNK), (0, CHUNK - 1), (1, 1)]
)
async def test_chunk_of_the_wrong_size_is_invalid_message(
    manager: UploadManager, index: int, size: int
) -> None:
    file_id = await start(manager, PNG)  # chunks of 1000, 1000, 568
    with pytest.raises(InvalidMessage) as caught:
        await manager.chunk(ALICE, file_id, index, 3, b64(b"x" * size))
    assert caught.value.details["field"] == "chunk_data"


async def test_duplicate_chunk_is_accepted_and_the_first_copy_kept(
    manager: UploadManager, storage: LocalStorage
) -> None:
    file_id = await start(manager, PNG)
    parts = pieces(PNG)
    await manager.chunk(ALICE, file_id, 0, 3, b64(parts[0]))
    again = await manager.chunk(ALICE, file_id, 0, 3, b64(b"z" * CHUNK))
    assert again["received_chunks"] == 1
    await manager.chunk(ALICE, file_id, 1, 3, b64(parts[1]))
    await manager.chunk(ALICE, file_id, 2, 3, b64(parts[2]))
    done = await manager.finalize(ALICE, file_id, sha(PNG))
    assert storage.published_path(done.stored_name).read_bytes() == PNG


async def test_disk_failure_is_storage_error_and_forgets_the_upload(
    manager: UploadManager, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id = await start(manager, PNG)

    async def full(upload_id: str, handle: str, index: int, offset: int, data: bytes) -> str:
        await storage.discard(upload_id, handle)
        raise StorageError("disk full")

    monkeypatch.setattr(storage, "write_chunk", full)
    with pytest.raises(StorageError):
        await manager.chunk(ALICE, file_id, 0, 3, b64(pieces(PNG)[0]))
    assert await manager.in_progress() == 0
    with pytest.raises(UploadNotFound):
        await manager.status(ALICE, file_id)


# ---- ownership ------------------------------------------------------------------------


async def test_someone_elses_upload_is_not_found_everywhere(manager: UploadManager) -> None:
    file_id = await start(manager, PNG)
    with pytest.raises(UploadNotFound):
        await manager.chunk(BOB, file_id, 0, 3, b64(pieces(PNG)[0]))
    with pytest.raises(UploadNotFound):
        await manager.status(BOB, file_id)
    with pytest.raises(UploadNotFound):
        await manager.finalize(BOB, file_id, sha(PNG))
    with pytest.raises(UploadNotFound):
        await manager.abort(BOB, file_id)
    assert (await manager.status(ALICE, file_id))["received_chunks"] == []


@pytest.mark.parametrize("file_id", ["no-such-upload", "00000000-0000-0000-0000-000000000000"])
async def test_unknown_file_id_is_upload_not_found(manager: UploadManager, file_id: str) -> None:
    with pytest.raises(UploadNotFound):
        await manager.chunk(ALICE, file_id, 0, 1, b64(b"x"))
    with pytest.raises(UploadNotFound):
        await manager.finalize(ALICE, file_id, sha(b"x"))


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


# ---- expiry -----------------------------------------------------------------------------


async def test_idle_uploads_expire_and_their_temp_files_go(
    manager: UploadManager, storage: LocalStorage, clock: Clock
) -> None:
    idle = await start(manager, PNG)
    clock.now += 3000
    active = await start(manager, PNG)
    clock.now += 601  # idle: 3601 s without activity; active: 601 s
    assert await manager.expire() == [idle]
    assert await manager.in_progress() == 1
    with pytest.raises(UploadNotFound):
        await manager.status(ALICE, idle)
    assert [p.name for p in storage.temp_dir.iterdir()] == [storage.temp_path(active).name]


async def test_activity_keeps_an_upload_alive(manager: UploadManager, clock: Clock) -> None:
    file_id = await start(manager, PNG)
    parts = pieces(PNG)
    for index in range(3):
        clock.now += 3000
        await manager.chunk(ALICE, file_id, index, 3, b64(parts[index]))
    clock.now += 3000
    await manager.status(ALICE, file_id)
    assert await manager.expire(clock.now + 3000) == []
    await manager.finalize(ALICE, file_id, sha(PNG))


async def test_an_upload_being_scanned_does_not_expire(
    make_manager: MakeManager, scanner: FakeScanner, clock: Clock
) -> None:
    manager = make_manager(scanner, upload_timeout=60)
    file_id = await start(manager, PNG)
    await send_all(manager, file_id, PNG)
    scanner.gate = asyncio.Event()
    task = asyncio.create_task(manager.finalize(ALICE, file_id, sha(PNG)))
    try:
        async with asyncio.timeout(5):
            await scanner.entered.wait()
        # Idle past the timeout, but held by a finalize claimed within its lease.
        assert await manager.expire(clock.now + 120) == []
    finally:
        scanner.gate.set()
        async with asyncio.timeout(5):
            await task


async def test_a_restarted_manager_resumes_an_upload_where_it_stopped(
    make_manager: MakeManager, scanner: FakeScanner
) -> None:
    first = make_manager(scanner)
    file_id = await start(first, PNG)
    parts = pieces(PNG)
    await first.chunk(ALICE, file_id, 0, 3, b64(parts[0]))
    # A new process (a new manager over the same database and directory) takes over.
    second = make_manager(scanner)
    assert (await second.status(ALICE, file_id))["received_chunks"] == [0]
    for index in (1, 2):
        await second.chunk(ALICE, file_id, index, 3, b64(parts[index]))
    done = await second.finalize(ALICE, file_id, sha(PNG))
    assert done.file_size == len(PNG)


async def test_two_managers_racing_to_finalize_publish_and_scan_once(
    make_manager: MakeManager, storage: LocalStorage, scanner: FakeScanner
) -> None:
    one, two = make_manager(scanner), make_manager(scanner)
    file_id = await start(one, PNG)
    await send_all(one, file_id, PNG)
    results = await asyncio.gather(
        one.finalize(ALICE, file_id, sha(PNG)),
        two.finalize(ALICE, file_id, sha(PNG)),
        return_exceptions=True,
    )
    published = [r for r in results if isinstance(r, FinalizedUpload)]
    refused = [r for r in results if isinstance(r, ChatError)]
    assert len(published) == 1 and len(refused) == 1, results
    assert isinstance(refused[0], (InvalidMessage, UploadNotFound))
    assert len(scanner.scanned) == 1
    assert [p.name for p in storage.upload_dir.iterdir() if p.is_file()] == [
        published[0].stored_name
    ]


async def test_a_finalize_claim_left_by_a_dead_process_expires_after_the_lease(
    make_manager: MakeManager, store: SqlStore, scanner: FakeScanner, clock: Clock
) -> None:
    manager = make_manager(scanner)
    file_id = await start(manager, PNG)
    await send_all(manager, file_id, PNG)
    assert await store.uploads.claim(file_id, clock.now, clock.now - 600)  # then it died
    with pytest.raises(InvalidMessage):
        await manager.finalize(ALICE, file_id, sha(PNG))
    clock.now += 601
    assert (await manager.finalize(ALICE, file_id, sha(PNG))).file_id == file_id


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
