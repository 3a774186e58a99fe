"""Virus scanning of uploads with a real clamd (SPEC §7, /work/shared/clamav.md):
only a clean verdict publishes; a detection or a scanner that cannot answer
publishes nothing."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests import clamd_fixture
from tests.clamd_fixture import Clamd, eicar_bytes, start_clamd
from tests.e2e.rooms_helpers import joined
from tests.e2e.upload_helpers import (
    FILES,
    MB,
    Payload,
    download_sha256,
    fails,
    finalize,
    finalize_frame,
    no_file_event_before_marker,
    published,
    send_chunks,
    start,
    status_frame,
    temp_file,
)
from tests.support import Namer, Server, ServerFactory, StartServer


@pytest.fixture(scope="module")
async def scanning(tmp_path_factory: pytest.TempPathFactory, clamd: Clamd) -> AsyncIterator[Server]:
    factory = ServerFactory(tmp_path_factory.mktemp("scanning"))
    try:
        yield await factory.start(
            VIRUS_SCAN_ENABLED="true", CLAMD_SOCKET=clamd.socket_path, CLAMD_TIMEOUT=30
        )
    finally:
        await factory.stop_all()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return buffer.getvalue()


async def test_health_reports_the_scanner(scanning: Server) -> None:
    r = await scanning.get("/health")
    assert r.status_code == 200 and r.json()["scanner"] == "ok"


async def test_a_clean_file_is_scanned_published_and_downloadable(
    scanning: Server, name: Namer
) -> None:
    room = name("scanned")
    alice, bob = await scanning.user(name()), await scanning.user(name())
    a = await joined(scanning, alice, room, "shared")
    b = await joined(scanning, bob, room)
    payload = Payload.of(zipped({"report.txt": b"all clean\n" * 1000, "data.csv": b"a,b\n1,2\n"}))
    file_id = await start(a, "report.zip", payload, room)
    await send_chunks(a, file_id, payload)
    complete = await finalize(a, file_id, payload.sha256)
    seen = await b.expect("file_upload", lambda f: f["data"].get("file_id") == file_id)
    assert seen == complete and complete["data"]["mime_type"] == "application/zip"
    status, digest, _ = await download_sha256(scanning, bob, complete["data"]["url"])
    assert status == 200 and digest == payload.sha256


@pytest.mark.parametrize(
    ("file_name", "payload"),
    [
        ("eicar.txt", Payload.of(eicar_bytes())),
        (
            "bundle.zip",
            Payload.of(
                zipped(
                    {"docs/readme.txt": b"nothing to see\n", "docs/eicar.com.txt": eicar_bytes()}
                )
            ),
        ),
        ("movie.mp4", Payload.mp4(50 * MB, seed=66, patches=[(50 * MB - 4096, eicar_bytes())])),
    ],
    ids=["alone", "in-a-zip", "near-the-end-of-50MB"],
)
async def test_eicar_is_virus_detected_and_nothing_is_published(
    scanning: Server, name: Namer, file_name: str, payload: Payload
) -> None:
    room = name("scanned")
    alice, bob = await scanning.user(name()), await scanning.user(name())
    a = await joined(scanning, alice, room, "shared")
    b = await joined(scanning, bob, room)
    before = published(scanning)
    file_id = await start(a, file_name, payload, room)
    await send_chunks(a, file_id, payload)
    error = await fails(a, finalize_frame(file_id, payload.sha256), "VIRUS_DETECTED", timeout=60)
    assert "EICAR" not in str(error)  # the signature name is logged, not told
    assert "EICAR" in scanning.log
    await fails(a, status_frame(file_id), "UPLOAD_NOT_FOUND")  # discarded
    assert (await scanning.get(FILES + file_id, alice)).status_code == 404
    assert published(scanning) == before and not temp_file(scanning, file_id).exists()
    await no_file_event_before_marker(b, a, room)


async def test_a_stopped_clamd_is_scan_unavailable_and_health_503_until_it_returns(
    start_server: StartServer, clamd_factory: Any, name: Namer
) -> None:
    scanner = clamd_factory()
    srv = await start_server(
        VIRUS_SCAN_ENABLED="true", CLAMD_SOCKET=scanner.socket_path, CLAMD_TIMEOUT=5
    )
    assert (await srv.get("/health")).status_code == 200
    user = await srv.user(name())
    client = await srv.connect(user)
    payload = Payload.of(b"perfectly harmless\n" * 50)
    file_id = await start(client, "harmless.txt", payload)
    await send_chunks(client, file_id, payload)
    before = published(srv)

    scanner.stop()
    health = await srv.get("/health")
    assert health.status_code == 503 and health.json()["scanner"] == "down"
    error = await fails(client, finalize_frame(file_id, payload.sha256), "SCAN_UNAVAILABLE")
    assert error["error"]
    assert (await srv.get(FILES + file_id, user)).status_code == 404
    assert published(srv) == before  # fail closed

    back = start_clamd(scanner.directory)  # same socket: the upload was kept, retry works
    try:
        assert (await srv.get("/health")).status_code == 200
        complete = await finalize(client, file_id, payload.sha256)
        r = await srv.get(complete["data"]["url"], user)
        assert r.status_code == 200 and r.content == payload.data
    finally:
        back.stop()


async def test_an_archive_member_too_large_to_scan_is_refused(
    scanning: Server, name: Namer
) -> None:
    """clamd scans a member only up to its MaxFileSize and then says OK: a zip whose
    member declares more than MAX_FILE_SIZE cannot be vouched for."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(51):
            member.write(bytes(MB))
    payload = Payload.of(buffer.getvalue())
    assert payload.size < MB
    client = await scanning.connect(await scanning.user(name()))
    before = published(scanning)
    file_id = await start(client, "zeros.zip", payload)
    await send_chunks(client, file_id, payload)
    await fails(client, finalize_frame(file_id, payload.sha256), "FILE_TYPE_NOT_ALLOWED")
    assert published(scanning) == before


async def test_a_clamd_whose_stream_limit_is_below_the_file_fails_closed(
    start_server: StartServer, clamd_factory: Any, monkeypatch: pytest.MonkeyPatch, name: Namer
) -> None:
    """Debian's default StreamMaxLength (25M) is below MAX_FILE_SIZE: clamd refuses the
    rest of the stream, and the file is not published as if it were clean."""
    monkeypatch.setattr(
        clamd_fixture,
        "CLAMD_LIMITS",
        clamd_fixture.CLAMD_LIMITS.replace("StreamMaxLength 64M", "StreamMaxLength 25M"),
    )
    scanner = clamd_factory()
    srv = await start_server(VIRUS_SCAN_ENABLED="true", CLAMD_SOCKET=scanner.socket_path)
    user = await srv.user(name())
    client = await srv.connect(user)
    payload = Payload.mp4(30 * MB, seed=30)
    file_id = await start(client, "long.mp4", payload)
    await send_chunks(client, file_id, payload)
    await fails(client, finalize_frame(file_id, payload.sha256), "SCAN_UNAVAILABLE", timeout=60)
    assert (await srv.get(FILES + file_id, user)).status_code == 404
    assert published(srv) == set()
    assert "StreamMaxLength" in srv.log  # the operator is told what to fix
