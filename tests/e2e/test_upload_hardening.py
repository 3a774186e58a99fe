"""Files against a hostile user: a deleted room's files are gone with it (a room
re-created under the same id gets none of them), and upload chunks that write
nothing cost a frame of the rate limit."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator

import pytest

from tests.e2e.rooms_helpers import joined
from tests.e2e.upload_helpers import (
    MP4_HEAD,
    Payload,
    answer,
    chunk_frame,
    fails,
    finalize_frame,
    published,
    put,
    send,
    send_chunks,
    start,
    until,
)
from tests.support import Namer, Server, ServerFactory


@pytest.mark.storage
async def test_a_deleted_rooms_files_are_unpublished_and_not_given_to_its_new_owner(
    server: Server, name: Namer
) -> None:
    room = name("room")
    owner, attacker = await server.user(name()), await server.user(name())
    client = await joined(server, owner, room, "shared")
    before = published(server)
    complete = await put(client, "plan.txt", Payload.of(b"the plan\n"), room)
    url = complete["data"]["url"]
    (stored,) = published(server) - before
    assert (await server.get(url, owner)).status_code == 200
    await client.send({"type": "delete_room", "room_id": room})
    await client.expect("room_deleted")
    a = await server.connect(attacker)
    await a.send({"type": "join_room", "room_id": room, "data": {"room_type": "shared"}})
    assert (await a.expect("join_room"))["data"]["members"] == [attacker.username]
    assert (await server.get(url, attacker)).status_code == 404
    assert (await server.get(url, owner)).status_code == 404
    await until(lambda: not stored.exists(), what="the deleted room's file removed from disk")


@pytest.fixture(scope="module")
async def tight(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """Tiny chunks and five frames a minute."""
    factory = ServerFactory(tmp_path_factory.mktemp("tight"))
    try:
        yield await factory.start(WS_RATE_LIMIT_REQUESTS=5, MAX_CHUNK_SIZE=1024)
    finally:
        await factory.stop_all()


async def test_repeated_chunks_count_towards_the_frame_rate_limit(
    tight: Server, name: Namer
) -> None:
    client = await tight.connect(await tight.user(name()))
    payload = Payload(3 * 1024, seed=7, chunk_size=1024, patches=((0, MP4_HEAD),))
    file_id = await start(client, "three.mp4", payload)  # frame 1
    await send_chunks(client, file_id, payload, [0])  # new: free
    codes = []
    for _ in range(6):  # repeats write nothing: frames 2-5, then over the limit
        reply = await answer(client, await send(client, chunk_frame(file_id, 0, payload.chunk(0))))
        codes.append(reply["data"].get("code") if reply["type"] == "error" else "ok")
    assert codes == ["ok"] * 4 + ["RATE_LIMIT"] * 2
    # chunks that write something stay free while the window is full
    acks = await send_chunks(client, file_id, payload, [1, 2])
    assert acks[-1]["received_chunks"] == 3


async def test_a_zip_with_more_members_than_clamd_scans_is_refused(
    server: Server, name: Namer
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(10_001):  # clamd's default MaxFiles is 10,000
            archive.writestr(f"{i}.txt", b"")
    payload = Payload.of(buffer.getvalue())
    client = await server.connect(await server.user(name()))
    file_id = await start(client, "many.zip", payload)
    await send_chunks(client, file_id, payload)
    error = await fails(client, finalize_frame(file_id, payload.sha256), "FILE_TYPE_NOT_ALLOWED")
    assert error["details"] == {"extension": "zip"}
