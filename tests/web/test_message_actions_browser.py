"""Edit, delete, reply, react, mention and search in the web app (SPEC §14), two or
three people each in a browser context of their own, through the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Page, Route, expect

from tests.web.pages import choose_model, create_room, join_room, log, message, send, sign_up

NewPage = Callable[..., Awaitable[Any]]
Name = Callable[[str], str]


async def two_in_a_room(
    start_server: Any, new_page: NewPage, name: Name, prefix: str
) -> tuple[Page, Page, str, str, str]:
    """alice owns a shared room that bob joined; both have it open, on "No AI"."""
    srv = await start_server()
    alice, bob = await new_page(srv.base), await new_page(srv.base)
    a_name, b_name, room = name("alice"), name("bob"), name(prefix)
    await sign_up(alice, a_name)
    await create_room(alice, room, "shared")
    await sign_up(bob, b_name)
    await join_room(bob, room)
    for page in (alice, bob):
        await choose_model(page, "No AI")
    return alice, bob, a_name, b_name, room


async def reopen(page: Page, room: str) -> None:
    await page.reload()
    await expect(page.get_by_role("status")).to_have_text("connected")
    await page.get_by_role("list", name="My rooms").get_by_role("button", name=room).click()
    await expect(page.get_by_role("heading", name=room)).to_be_visible()


def accept_confirms(page: Page) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


async def test_an_edit_shows_live_to_the_other_marked_edited_and_survives_a_reload(
    start_server: Any, new_page: NewPage, name: Name
) -> None:
    alice, bob, _, _, room = await two_in_a_room(start_server, new_page, name, "Edits")
    await send(alice, "see you at 5")
    await expect(message(bob, "see you at 5")).to_be_visible()

    mine = message(alice, "see you at 5")
    await mine.get_by_role("button", name="Edit").click()
    editor = alice.get_by_role("textbox", name="Edit message")
    await editor.fill("not sent")
    await editor.press("Escape")  # cancels
    await expect(editor).to_have_count(0)
    await mine.get_by_role("button", name="Edit").click()
    await editor.fill("see you at 6")
    await editor.press("Enter")  # saves
    await expect(editor).to_have_count(0)

    for page in (alice, bob):
        edited = message(page, "see you at 6")
        await expect(edited).to_be_visible()
        await expect(edited.get_by_text("(edited)")).to_be_visible()
        await expect(message(page, "see you at 5")).to_have_count(0)
    # only the author may edit: bob's copy has no Edit button
    await expect(message(bob, "see you at 6").get_by_role("button", name="Edit")).to_have_count(0)

    await reopen(bob, room)
    await expect(message(bob, "see you at 6").get_by_text("(edited)")).to_be_visible()
    await expect(message(bob, "see you at 5")).to_have_count(0)


async def test_a_deleted_message_is_a_tombstone_for_both_live_and_after_a_reload(
    start_server: Any, new_page: NewPage, name: Name
) -> None:
    alice, bob, _, _, room = await two_in_a_room(start_server, new_page, name, "Oops")
    accept_confirms(alice)
    await send(alice, "my password is hunter2")
    await send(bob, "a word from bob")
    await expect(message(alice, "a word from bob")).to_be_visible()
    # bob may not delete alice's message; alice owns the room and may delete bob's
    await expect(message(bob, "hunter2").get_by_role("button", name="Delete")).to_have_count(0)
    await message(alice, "hunter2").get_by_role("button", name="Delete").click()
    await message(alice, "a word from bob").get_by_role("button", name="Delete").click()

    for page in (alice, bob):
        await expect(log(page).get_by_text("message deleted")).to_have_count(2)
        await expect(log(page).get_by_text("hunter2")).to_have_count(0)
        await expect(log(page).get_by_text("a word from bob")).to_have_count(0)
    await reopen(bob, room)
    await expect(log(bob).get_by_text("message deleted")).to_have_count(2)
    await expect(log(bob).get_by_text("hunter2")).to_have_count(0)


async def test_a_reply_shows_a_quote_of_the_message_that_jumps_to_it(
    start_server: Any, new_page: NewPage, name: Name
) -> None:
    alice, bob, a_name, _, room = await two_in_a_room(start_server, new_page, name, "Lunch")
    await send(alice, "lunch at noon?")
    await send(alice, "unrelated")
    await expect(message(bob, "unrelated")).to_be_visible()

    await message(bob, "lunch at noon?").get_by_role("button", name="Reply").click()
    bar = bob.locator("#reply-bar")
    await expect(bar).to_contain_text(f"Replying to {a_name}: lunch at noon?")
    await expect(bob.get_by_role("textbox", name="Message")).to_be_focused()
    await send(bob, "yes please")
    await expect(bar).to_be_hidden()

    for page in (alice, bob):
        quote = message(page, "yes please").locator(".quote")
        await expect(quote).to_have_text(f"↪ {a_name}lunch at noon?")
    await message(alice, "yes please").locator(".quote").click()
    await expect(message(alice, "lunch at noon?").first).to_be_focused()
    await reopen(alice, room)
    await expect(message(alice, "yes please").locator(".quote")).to_contain_text("lunch at noon?")

    # Cancel drops the reply: the next message quotes nothing
    await message(bob, "unrelated").get_by_role("button", name="Reply").click()
    await bob.get_by_role("button", name="Cancel reply").click()
    await expect(bar).to_be_hidden()
    await send(bob, "no quote here")
    await expect(message(alice, "no quote here")).to_be_visible()
    await expect(message(alice, "no quote here").locator(".quote")).to_have_count(0)


async def test_a_reaction_chip_counts_both_people_and_clicking_it_toggles(
    start_server: Any, new_page: NewPage, name: Name
) -> None:
    alice, bob, _, _, room = await two_in_a_room(start_server, new_page, name, "Ship")
    await send(alice, "ship it")
    await expect(message(bob, "ship it")).to_be_visible()
    await message(alice, "ship it").get_by_role("button", name="React", exact=True).click()
    await alice.get_by_role("button", name="React with 👍").click()

    chip = message(bob, "ship it").get_by_role("button", name="👍 1")
    await expect(chip).to_have_attribute("aria-pressed", "false")
    await expect(message(alice, "ship it").get_by_role("button", name="👍 1")).to_have_attribute(
        "aria-pressed", "true"
    )
    await chip.click()  # bob adds his
    for page in (alice, bob):
        await expect(message(page, "ship it").get_by_role("button", name="👍 2")).to_be_visible()
    both = message(bob, "ship it").get_by_role("button", name="👍 2")
    await expect(both).to_have_attribute("aria-pressed", "true")
    await both.click()  # and takes it back
    for page in (alice, bob):
        await expect(message(page, "ship it").get_by_role("button", name="👍 1")).to_be_visible()
    await reopen(bob, room)
    after = message(bob, "ship it").get_by_role("button", name="👍 1")
    await expect(after).to_have_attribute("aria-pressed", "false")


async def test_a_mention_highlights_and_notifies_only_the_member_it_names(
    start_server: Any, new_page: NewPage, name: Name
) -> None:
    srv = await start_server()
    alice, bob, carol = [await new_page(srv.base) for _ in range(3)]
    a_name, b_name, room = name("alice"), name("bob"), name("Calls")
    await sign_up(alice, a_name)
    await create_room(alice, room, "shared")
    await sign_up(bob, b_name)
    await join_room(bob, room)
    await sign_up(carol, name("carol"))
    await join_room(carol, room)
    for page in (bob, carol):  # both look elsewhere
        await page.get_by_role("button", name="New AI chat").click()
    await choose_model(alice, "No AI")
    await send(alice, f'@{b_name}, can you look? <img src=x onerror="window.pwned=1">')

    rooms = bob.get_by_role("list", name="My rooms")
    await expect(rooms.get_by_label("1 mention")).to_be_visible()
    await expect(rooms.get_by_label("1 unread")).to_be_visible()
    notice = bob.get_by_role("button", name=f"{a_name} mentioned you in {room}")
    await expect(notice).to_be_visible()
    carol_rooms = carol.get_by_role("list", name="My rooms")
    await expect(carol_rooms.get_by_label("1 unread")).to_be_visible()
    await expect(carol_rooms.get_by_label("1 mention")).to_have_count(0)
    await expect(carol.locator("#mention-notice")).to_be_hidden()

    await notice.click()  # opens the room at once
    await expect(bob.get_by_role("heading", name=room)).to_be_visible()
    said = message(bob, "can you look?")
    await expect(said.locator(".mention.me")).to_have_text(f"@{b_name}")
    await expect(said.locator("img")).to_have_count(0)
    assert await bob.evaluate("window.pwned") is None
    await expect(rooms.get_by_label("1 mention")).to_have_count(0)
    await carol_rooms.get_by_role("button", name=room).click()
    await expect(message(carol, "can you look?").locator(".mention")).to_have_text(f"@{b_name}")
    await expect(message(carol, "can you look?").locator(".mention.me")).to_have_count(0)


async def test_search_finds_a_message_by_a_word_and_opening_the_result_shows_its_room(
    start_server: Any, new_page: NewPage, name: Name
) -> None:
    alice, bob, _, b_name, room = await two_in_a_room(start_server, new_page, name, "Zoo")
    await send(bob, "the quokka smiles all day")
    await send(bob, "a quokkas plural is not the word")
    await expect(message(alice, "quokkas plural")).to_be_visible()
    other = name("Elsewhere")
    await create_room(alice, other, "group")

    await alice.get_by_role("searchbox", name="Search messages").fill("Quokka")
    await alice.get_by_role("searchbox", name="Search messages").press("Enter")
    results = alice.get_by_role("region", name="Search results")
    hits = results.get_by_role("button").filter(has_text="smiles")
    await expect(hits).to_have_count(1)
    await expect(hits).to_contain_text(room)
    await expect(hits).to_contain_text(b_name)
    await expect(results.get_by_role("button").filter(has_text="plural")).to_have_count(0)
    await hits.click()
    await expect(results).to_be_hidden()
    await expect(alice.get_by_role("heading", name=room)).to_be_visible()
    await expect(message(alice, "the quokka smiles").first).to_be_focused()

    # scoped to a room with no such message: nothing found
    await alice.get_by_role("list", name="My rooms").get_by_role("button", name=other).click()
    await alice.get_by_label("Search in").select_option("room")
    await alice.get_by_role("searchbox", name="Search messages").press("Enter")
    await expect(results).to_contain_text("Nothing found")


async def test_a_room_that_loads_slowly_leaves_the_focus_where_the_user_moved_it(
    start_server: Any, new_page: NewPage, name: Name
) -> None:
    alice, _, _, b_name, room = await two_in_a_room(start_server, new_page, name, "Slow")
    await send(alice, "the wombat digs")
    # bob has the room open: alice's message shows his read, which a room's opening
    # draws last, just before it decides where the focus goes
    read = message(alice, "the wombat digs").get_by_text(f"read by {b_name}")
    await expect(read).to_be_visible()
    other = name("Elsewhere")
    await create_room(alice, other, "group")
    release = asyncio.get_running_loop().create_future()
    asked = asyncio.get_running_loop().create_future()

    async def hold(route: Route) -> None:
        if not asked.done():
            asked.set_result(None)
        await release
        await route.continue_()

    await alice.route("**/messages?*", hold)  # the room's history, held until released
    await alice.get_by_role("list", name="My rooms").get_by_role("button", name=room).click()
    await asyncio.wait_for(asked, 10)
    search = alice.get_by_role("searchbox", name="Search messages")
    await search.fill("wombat")
    release.set_result(None)
    await expect(read).to_be_visible()  # the room has opened to the end
    await expect(search).to_be_focused()
    await search.press("Enter")
    results = alice.get_by_role("region", name="Search results")
    await expect(results.get_by_role("button").filter(has_text="digs")).to_have_count(1)


async def test_changes_made_while_a_page_was_offline_apply_after_it_resyncs_once_each(
    start_server: Any, new_page: NewPage, name: Name
) -> None:
    alice, bob, _, _, _ = await two_in_a_room(start_server, new_page, name, "Away")
    accept_confirms(alice)
    for text in ("typo heer", "wrong room, sorry", "react to me"):
        await send(alice, text)
    await expect(message(bob, "react to me")).to_be_visible()
    await bob.evaluate("window.chinwag.close()")  # bob's network goes away
    await expect(bob.get_by_role("status")).to_have_text("offline")

    await message(alice, "typo heer").get_by_role("button", name="Edit").click()
    await alice.get_by_role("textbox", name="Edit message").fill("typo here")
    await alice.get_by_role("button", name="Save").click()
    await message(alice, "wrong room").get_by_role("button", name="Delete").click()
    await message(alice, "react to me").get_by_role("button", name="React", exact=True).click()
    await alice.get_by_role("button", name="React with 🎉").click()
    await expect(message(alice, "react to me").get_by_role("button", name="🎉 1")).to_be_visible()
    await send(alice, "and one more")

    await bob.evaluate("window.chinwag.connect()")  # back: sync replays what was missed
    await expect(message(bob, "and one more")).to_have_count(1)
    await expect(message(bob, "typo here")).to_have_count(1)
    await expect(message(bob, "typo heer")).to_have_count(0)
    await expect(log(bob).get_by_text("message deleted")).to_have_count(1)
    await expect(message(bob, "react to me").get_by_role("button", name="🎉 1")).to_be_visible()
    await expect(log(bob).get_by_role("listitem")).to_have_count(
        await log(alice).get_by_role("listitem").count()
    )
