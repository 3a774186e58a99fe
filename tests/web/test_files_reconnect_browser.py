"""Uploads with progress, and pages that survive a server restart."""

from __future__ import annotations

import asyncio
import hashlib
import random
import string
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.support import restart
from tests.web.pages import choose_model, create_room, join_room, log, message, send, sign_up

NewPage = Callable[..., Awaitable[Any]]


async def test_5mb_upload_shows_progress_to_100_and_the_other_user_downloads_the_same_bytes(
    start_server: Any, new_page: NewPage, name: Callable[[str], str], tmp_path: Path
) -> None:
    srv = await start_server()
    alice, bob = await new_page(srv.base), await new_page(srv.base)
    room = name("Files ")
    await sign_up(alice, name("alice"))
    await create_room(alice, room, "shared")
    await sign_up(bob, name("bob"))
    await join_room(bob, room)
    rng = random.Random(13)
    payload = "".join(rng.choices(string.ascii_letters + "\n", k=5 * 1024 * 1024)).encode()
    source = tmp_path / "notes.txt"
    source.write_bytes(payload)

    seen: list[int] = []
    await alice.expose_function("progressSeen", lambda v: seen.append(int(v)))
    await alice.evaluate("""() => new MutationObserver(() =>
        window.progressSeen(document.getElementById('upload-progress').value))
        .observe(document.getElementById('upload-progress'), {attributes: true})""")
    await alice.get_by_label("Attach file").set_input_files(str(source))
    await expect(alice.get_by_label("Upload progress")).to_have_attribute("value", "100")
    await expect(alice.get_by_text("Uploaded notes.txt: 100 %")).to_be_visible()
    assert any(0 < v < 100 for v in seen), f"no intermediate progress: {seen}"

    link = bob.get_by_role("link", name="Download notes.txt")
    async with bob.expect_download() as info:
        await link.click()
    download = await info.value
    got = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()


async def test_image_upload_shows_a_preview(
    start_server: Any, new_page: NewPage, name: Callable[[str], str], tmp_path: Path
) -> None:
    srv = await start_server()
    page = await new_page(srv.base)
    await sign_up(page, name("alice"))
    await create_room(page, name("Pics "), "group")
    png = tmp_path / "dot.png"
    png.write_bytes(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
        )
    )
    await page.get_by_label("Attach file").set_input_files(str(png))
    preview = page.get_by_role("img", name="Preview of dot.png")
    await expect(preview).to_be_visible()
    # Visible can come before loaded: wait for the image's load (or error) event.
    width = await preview.evaluate(
        """img => img.complete ? img.naturalWidth : new Promise(done => {
            img.addEventListener('load', () => done(img.naturalWidth), {once: true});
            img.addEventListener('error', () => done(0), {once: true});
        })"""
    )
    assert width == 1


async def test_after_a_server_restart_both_pages_reconnect_and_show_a_message_sent_meanwhile_once(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    alice, bob = await new_page(srv.base), await new_page(srv.base)
    room = name("Steady ")
    await sign_up(alice, name("alice"))
    await create_room(alice, room, "shared")
    await sign_up(bob, name("bob"))
    await join_room(bob, room)
    await choose_model(alice, "No AI")
    await send(alice, "before the restart")
    await expect(message(bob, "before the restart")).to_be_visible()
    room_id = await alice.evaluate("[...window.chinwag.seqs.cursors.keys()][0]")

    await srv.stop()
    for page in (alice, bob):
        await expect(page.get_by_role("status")).not_to_have_text("connected")
    await srv.start()
    carol = await srv.user(name("carol"))
    ws = await srv.connect(carol)
    await ws.send({"type": "join_room", "room_id": room_id, "data": {"room_type": "shared"}})
    await ws.expect("join_room")
    await ws.send(
        {
            "type": "chat",
            "room_id": room_id,
            "message_id": "m1",
            "data": {"message": "sent while you were away", "ai": False},
        }
    )
    await ws.expect("delivery_confirmation")

    for page in (alice, bob):
        await expect(page.get_by_role("status")).to_have_text("connected", timeout=30_000)
        await expect(message(page, "sent while you were away")).to_have_count(1)
        await expect(message(page, "before the restart")).to_have_count(1)
    # and the connection goes on working both ways
    await send(bob, "still here")
    await expect(message(alice, "still here")).to_have_count(1)
    await restart(srv)
    await expect(alice.get_by_role("status")).to_have_text("connected", timeout=30_000)
    await expect(log(alice).get_by_role("listitem").filter(has_text="still here")).to_have_count(1)
