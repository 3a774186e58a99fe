"""Take the README's screenshots of the web app and the admin page.

    ADMIN_USERNAME=admin ADMIN_PASSWORD=admin-password-1 OFFLINE_TOKEN_DELAY=0.02 \\
        DATA_DIR=/tmp/shots chinwag serve --port 8765 &
    python scripts/screenshots.py --url http://127.0.0.1:8765 --admin admin:admin-password-1

Drives Debian's Chromium (``CHROMIUM``, default /usr/bin/chromium) with Playwright;
writes docs/screenshots/app.png and admin.png. Needs a fresh server (it signs up
alice and bob)."""

from __future__ import annotations

import argparse
import os
import struct
import tempfile
import zlib
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PASSWORD = "wonderland-1"


def png(width: int, height: int) -> bytes:
    """A small gradient picture, to show an image preview."""
    rows = b"".join(
        b"\x00"
        + bytes(
            v
            for x in range(width)
            for v in (40 + x * 180 // width, 90 + y * 120 // height, 200, 255)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sign_up(page: Page, url: str, username: str) -> None:
    page.goto(url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_have_text("connected")


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8765")
    parser.add_argument("--admin", default="admin:admin-password-1")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    OUT.mkdir(parents=True, exist_ok=True)
    picture = Path(tempfile.mkdtemp()) / "sunrise.png"
    picture.write_bytes(png(320, 180))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
        size = {"width": 1280, "height": 800}
        alice = browser.new_context(viewport=size).new_page()
        bob = browser.new_context(viewport=size).new_page()
        sign_up(alice, url, "alice")
        alice.get_by_role("button", name="New room").click()
        alice.get_by_label("Room name").fill("Team lobby")
        alice.get_by_role("button", name="Create").click()
        alice.get_by_role("button", name="New room").click()
        alice.get_by_label("Room name").fill("Design review")
        alice.get_by_label("Room type").select_option("group")
        alice.get_by_role("button", name="Create").click()
        sign_up(bob, url, "bob")
        bob.reload()
        bob.get_by_role("button", name="Join Team lobby").click()
        alice.get_by_role("button", name="Team lobby").click()
        alice.get_by_label("Model").select_option(label="No AI")
        send(alice, "Morning! The **release notes** are in `docs/` — have a look?")
        expect(bob.get_by_text("release notes")).to_be_visible()
        log = bob.get_by_role("log", name="Messages").locator("li.msg")
        log.filter(has_text="release notes").get_by_role("button", name="Reply").click()
        send(bob, "On it. Two things:\n- the upload limit\n- the *admin* page")
        mine = alice.get_by_role("log", name="Messages").locator("li.msg").filter(has_text="On it")
        mine.get_by_role("button", name="React", exact=True).click()
        alice.get_by_role("button", name="React with 👍").click()
        expect(bob.get_by_role("button", name="👍 1")).to_be_visible()
        bob.get_by_label("Attach file").set_input_files(str(picture))
        expect(bob.get_by_text("Uploaded sunrise.png: 100 %")).to_be_visible()
        alice.get_by_label("Model").select_option(index=1)
        send(alice, "Summarise the thread for me, please.")
        expect(alice.locator(".ai-meta")).to_be_visible()
        bob.get_by_role("textbox", name="Message").press_sequentially("looks go")
        expect(alice.get_by_text("bob is typing…")).to_be_visible()
        alice.wait_for_timeout(300)
        alice.screenshot(path=str(OUT / "app.png"))

        admin = browser.new_context(viewport={"width": 1280, "height": 1180}).new_page()
        name, password = args.admin.split(":", 1)
        admin.goto(url + "/admin")
        admin.get_by_label("Username").fill(name)
        admin.get_by_label("Password").fill(password)
        admin.get_by_role("button", name="Sign in").click()
        for i in range(24):
            send(bob if i % 2 else alice, f"message {i}")
            admin.wait_for_timeout(250 if i % 4 else 2200)
        admin.screenshot(path=str(OUT / "admin.png"), full_page=True)
        browser.close()
    print(f"wrote {OUT / 'app.png'} and {OUT / 'admin.png'}")


if __name__ == "__main__":
    main()
