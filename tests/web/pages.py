"""What a person does in the web app, found by the accessible names of SPEC §9."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.support import PASSWORD


async def sign_up(page: Page, username: str, password: str = PASSWORD) -> None:
    await page.goto("/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("status")).to_have_text("connected")


async def sign_in(page: Page, username: str, password: str, path: str = "/") -> None:
    await page.goto(path)
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def create_room(page: Page, name: str, room_type: str = "shared") -> None:
    await page.get_by_role("button", name="New room").click()
    await page.get_by_label("Room name").fill(name)
    await page.get_by_label("Room type").select_option(room_type)
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()


async def join_room(page: Page, name: str) -> None:
    await page.reload()  # the shared-room list as it is now
    await expect(page.get_by_role("status")).to_have_text("connected")
    await page.get_by_role("button", name=f"Join {name}").click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()


async def choose_model(page: Page, label: str) -> None:
    await page.get_by_label("Model").select_option(label=label)


async def send(page: Page, text: str) -> None:
    await page.get_by_role("textbox", name="Message", exact=True).fill(text)
    await page.get_by_role("button", name="Send").click()


def log(page: Page) -> Any:
    return page.get_by_role("log", name="Messages")


def message(page: Page, text: str) -> Any:
    return log(page).get_by_role("listitem").filter(has_text=text)
