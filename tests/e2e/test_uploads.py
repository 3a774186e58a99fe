"""Files over the socket (SPEC §7): chunked uploads in any order, resumed after a
reconnect, verified, shared with a room and served over HTTP, through a real server.

Errors are in test_upload_errors.py, per-user bounds and expiry in test_upload_limits.py,
a failing disk in test_upload_storage_failures.py, scanning with a real clamd in
test_uploads_scanning.py; the helpers are in upload_helpers.py."""

from __future__ import annotations

import random
import uuid

import pytest

from tests.e2e.rooms_helpers import joined
from tests.e2e.upload_helpers import (
    FILES,
    MB,
    Payload,
    call,
    chunk_frame,
    disposition,
    download_sha256,
    files_under,
    finalize,
    is_complete,
    published,
    put,
    send_chunks,
    start,
    status_frame,
    temp_file,
    upload_dir,
)
from tests.support import Namer, Server

# ---- the whole story: 50 MB, out of order, resumed, shared ----------------------------


COMPLETE_KEYS = {"upload_type", "file_id", "file_name", "file_size", "mime_type", "checksum", "url"}


async def test_50mb_out_of_order_with_a_reconnect_reaches_every_member_byte_identical(
    server: Server, name: Namer
) -> None:
    room = name("files")
    alice, bob, carol = (
        await server.user(name()),
        await server.user(name()),
        await server.user(name()),
    )
    a = await joined(server, alice, room, "shared")
    b = await joined(server, bob, room)
    c = await joined(server, carol, room)
    await c.close()  # a member, offline during the whole upload
    await a.expect(
        "presence",
        lambda f: f["data"] == {"room_id": room, "username": carol.username, "status": "offline"},
    )

    payload = Payload.mp4(50 * MB, seed=50)
    file_id = await start(a, "holiday.mp4", payload, room)
    order = list(range(payload.total_chunks))
    random.Random(7).shuffle(order)
    first, in_flight = order[:20], order[20:26]

    acks = await send_chunks(a, file_id, payload, first)
    assert [ack["received_chunks"] for ack in acks] == list(range(1, 21))
    assert acks[-1]["total_chunks"] == 50 and acks[-1]["progress"] == 40.0
    again = await send_chunks(a, file_id, payload, [first[3]])  # a repeat is harmless
    assert again[0]["received_chunks"] == 20
    for index in in_flight:  # sent, not waited for, then the connection drops
        await a.send(chunk_frame(file_id, index, payload.chunk(index)))
    a.ws.transport.abort()
    await a.close()

    a = await server.connect(alice)
    status = await call(a, status_frame(file_id))
    assert status["type"] == "file_upload", status
    received = status["data"]["received_chunks"]
    assert status["data"]["upload_type"] == "status" and status["data"]["total_chunks"] == 50
    assert received == sorted(received)
    assert set(first) <= set(received) <= set(first) | set(in_flight)
    missing = [i for i in order if i not in received]
    acks = await send_chunks(a, file_id, payload, missing)
    assert acks[-1]["received_chunks"] == 50 and acks[-1]["progress"] == 100.0

    complete = await finalize(a, file_id, payload.sha256)
    seen_by_bob = await b.expect("file_upload", is_complete(file_id))
    c = await server.connect(carol)  # the offline queue
    seen_by_carol = await c.expect("file_upload", is_complete(file_id))
    for frame in (complete, seen_by_bob, seen_by_carol):
        assert frame["room_id"] == room and isinstance(frame["seq"], int)
        data = frame["data"]
        assert COMPLETE_KEYS <= data.keys()
        assert data["file_name"] == "holiday.mp4" and data["file_size"] == 50 * MB
        assert data["mime_type"] == "video/mp4" and data["checksum"] == payload.sha256
        assert data["url"] == FILES + file_id
    assert complete == seen_by_bob == seen_by_carol

    status_code, digest, headers = await download_sha256(server, carol, complete["data"]["url"])
    assert status_code == 200 and digest == payload.sha256
    assert headers["content-length"] == str(50 * MB)
    assert not temp_file(server, file_id).exists()
    history = (await server.get(f"/api/v1/ws/rooms/{room}/messages", bob)).json()["messages"]
    assert [m for m in history if m["type"] == "file_upload"] == [complete]


async def test_two_uploads_interleaved_on_one_connection(server: Server, name: Namer) -> None:
    admin = await server.admin()
    completed = (await server.get("/api/v1/ws/stats", admin)).json()["uploads"]["completed"]
    client = await server.connect(await server.user(name()))
    one, two = Payload.mp4(2 * MB + 5, seed=1), Payload.mp4(3 * MB, seed=2)
    id_one = await start(client, "one.mp4", one)
    id_two = await start(client, "two.mp4", two)
    for i in range(3):
        await send_chunks(client, id_two, two, [2 - i])
        await send_chunks(client, id_one, one, [i])
    done_two = await finalize(client, id_two, two.sha256)
    done_one = await finalize(client, id_one, one.sha256)
    assert (done_one["data"]["file_size"], done_two["data"]["file_size"]) == (2 * MB + 5, 3 * MB)
    stats = (await server.get("/api/v1/ws/stats", admin)).json()
    assert stats["uploads"]["completed"] == completed + 2


# ---- downloads -------------------------------------------------------------------------


async def test_uploader_and_members_download_with_safe_headers_others_do_not(
    server: Server, name: Namer
) -> None:
    room = name("files")
    alice, bob, eve = (
        await server.user(name()),
        await server.user(name()),
        await server.user(name()),
    )
    a = await joined(server, alice, room, "shared")
    await joined(server, bob, room)
    content = b"<script>alert(1)</script> is just text here\n"
    complete = await put(a, "notes.txt", Payload.of(content), room)
    url = complete["data"]["url"]
    for who in (alice, bob):
        r = await server.get(url, who)
        assert r.status_code == 200 and r.content == content
        assert r.headers["content-type"].split(";")[0] == "text/plain"
        assert r.headers["content-type"].split(";")[0] == complete["data"]["mime_type"]
        assert disposition(r.headers["content-disposition"]) == ("attachment", "notes.txt")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]
    assert (await server.get(url, eve)).status_code == 403
    assert (await server.get(url)).status_code == 401
    assert (await server.get(FILES + str(uuid.uuid4()), alice)).status_code == 404


async def test_a_file_without_a_room_is_for_its_uploader_only(server: Server, name: Namer) -> None:
    alice, bob = await server.user(name()), await server.user(name())
    a = await server.connect(alice)
    complete = await put(a, "private.json", Payload.of(b'{"secret": true}'))
    assert "room_id" not in complete and "seq" not in complete
    url = complete["data"]["url"]
    r = await server.get(url, alice)
    assert r.status_code == 200 and r.content == b'{"secret": true}'
    assert r.headers["content-type"] == "application/json"
    assert (await server.get(url, bob)).status_code == 403


@pytest.mark.parametrize(
    ("file_name", "stored_as"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
        ('a"b\r\nSet-Cookie: x=1.txt', "a_bSet-Cookie_ x=1.txt"),
        ("\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fx.txt", "x.txt"),  # fullwidth: NFKC first
    ],
)
async def test_a_hostile_file_name_is_sanitised_and_stored_inside_upload_dir(
    server: Server, name: Namer, file_name: str, stored_as: str
) -> None:
    user = await server.user(name())
    client = await server.connect(user)
    outside = server.workdir.parent
    before_outside, before_inside = files_under(outside), published(server)
    content = f"{name('x')}\n".encode()
    complete = await put(client, file_name, Payload.of(content))
    assert complete["data"]["file_name"] == stored_as
    r = await server.get(complete["data"]["url"], user)
    assert r.status_code == 200 and r.content == content
    assert disposition(r.headers["content-disposition"]) == ("attachment", stored_as)
    assert "set-cookie" not in r.headers
    new = files_under(outside) - before_outside
    assert published(server) - before_inside == new  # the only file written
    (stored,) = new
    assert stored.parent == upload_dir(server) and len(stored.name) == 32
    assert stored.read_bytes() == content
