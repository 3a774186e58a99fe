"""The admin page: refused to others; live numbers; disabling a user signs them out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import expect

from tests.support import ADMIN
from tests.web.pages import choose_model, create_room, send, sign_in, sign_up

NewPage = Callable[..., Awaitable[Any]]


async def test_a_non_admin_is_refused_the_admin_page(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    page = await new_page(srv.base)
    await sign_up(page, name("bob"))
    await page.get_by_role("link", name="Admin").wait_for(state="hidden")
    await page.goto("/admin")
    await expect(page.get_by_role("heading", name="Admins only")).to_be_visible()
    await expect(page.locator("[data-stat]")).to_have_count(0)  # no stats were given


async def test_admin_sees_numbers_move_and_disabling_a_user_signs_their_page_out(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    admin, bob = await new_page(srv.base), await new_page(srv.base)
    b_name = name("bob")
    await sign_up(bob, b_name)
    await create_room(bob, name("Busy "), "shared")
    await choose_model(bob, "No AI")

    await sign_in(admin, *ADMIN, path="/admin")
    received = admin.locator('[data-stat="messages_received"]')
    await expect(admin.get_by_text("active_connections", exact=True)).to_be_visible()
    await expect(admin.locator('[data-stat="active_connections"]')).to_have_text("1")
    before = int(await received.inner_text())
    await send(bob, "making numbers move")
    await expect(received).not_to_have_text(str(before))
    assert int(await received.inner_text()) > before
    await expect(
        admin.get_by_role("img", name="Chart of messages and connections").locator("polyline")
    ).to_have_count(2)
    users = admin.get_by_role("table", name="Users")
    await expect(users.get_by_role("cell", name=b_name, exact=True)).to_be_visible()

    await admin.get_by_role("button", name=f"Disable {b_name}").click()
    await expect(bob.get_by_role("button", name="Sign in")).to_be_visible()
    await expect(bob.get_by_role("alert")).to_contain_text("disabled")
    await expect(admin.get_by_role("button", name=f"Enable {b_name}")).to_be_visible()
    await expect(admin.locator('[data-stat="active_connections"]')).to_have_text("0")
