"""Two people chat in the web app, each in a browser context of their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import expect

from tests.web.pages import choose_model, create_room, join_room, log, message, send, sign_up

NewPage = Callable[..., Awaitable[Any]]


async def test_two_people_chat_both_ways_with_typing_and_read_state(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    alice, bob = await new_page(srv.base), await new_page(srv.base)
    a_name, b_name, room = name("alice"), name("bob"), name("Lobby ")
    await sign_up(alice, a_name)
    await create_room(alice, room, "shared")
    await sign_up(bob, b_name)
    await join_room(bob, room)

    await choose_model(alice, "No AI")
    await send(alice, "hello **bob**")
    await expect(message(bob, "hello bob")).to_be_visible()
    await expect(message(bob, "hello bob").locator(".body strong")).to_have_text("bob")

    # bob has the room open: his page marks it read, alice sees that on her message
    await expect(message(alice, "hello bob").get_by_text(f"read by {b_name}")).to_be_visible()

    await bob.get_by_role("textbox", name="Message").press_sequentially("on my way")
    await expect(alice.get_by_text(f"{b_name} is typing…")).to_be_visible()
    await bob.get_by_role("button", name="Send").click()
    await expect(message(alice, "on my way")).to_be_visible()
    await expect(alice.get_by_text(f"{b_name} is typing…")).to_be_hidden()
    await expect(log(alice).get_by_role("listitem").filter(has_text="on my way")).to_have_count(1)


async def test_unread_count_shows_for_a_room_that_is_not_open(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    alice, bob = await new_page(srv.base), await new_page(srv.base)
    room = name("Side ")
    await sign_up(alice, name("alice"))
    await create_room(alice, room, "shared")
    await sign_up(bob, name("bob"))
    await join_room(bob, room)
    await bob.get_by_role("button", name="New AI chat").click()  # bob looks elsewhere
    await choose_model(alice, "No AI")
    await send(alice, "one")
    await send(alice, "two")
    await expect(bob.get_by_label("2 unread")).to_be_visible()


async def test_html_and_script_in_a_message_run_nothing(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    alice, bob = await new_page(srv.base), await new_page(srv.base)
    room = name("Safe ")
    await sign_up(alice, name("alice"))
    await create_room(alice, room, "shared")
    await sign_up(bob, name("bob"))
    await join_room(bob, room)
    await choose_model(alice, "No AI")
    evil = (
        '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> '
        '[link](javascript:window.pwned=3) <svg onload="window.pwned=4"></svg>'
    )
    await send(alice, evil)
    for page in (alice, bob):
        shown = message(page, "<img src=x")
        await expect(shown).to_be_visible()  # shown as the text it is
        await expect(shown.locator("img, script, svg")).to_have_count(0)
        await expect(shown.locator("a")).not_to_have_attribute("href", "javascript:window.pwned=3")
        await shown.locator("a").click()
        assert await page.evaluate("window.pwned") is None


async def test_ai_reply_streams_with_tokens_model_and_cost_and_stop_stops_it(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server(OFFLINE_TOKEN_DELAY="0.05")
    page = await new_page(srv.base)
    await sign_up(page, name("alice"))
    await page.get_by_role("button", name="New AI chat").click()
    await send(page, "a short one")
    done = log(page).get_by_role("listitem").filter(has_text="tokens")
    await expect(done).to_contain_text("chinwag-offline")
    await expect(done).to_contain_text("$0.0000")
    await expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    await send(page, " ".join(["word"] * 400))  # echoed back: many seconds of tokens
    streaming = log(page).locator("li.streaming")
    await expect(streaming).to_contain_text("You said")
    await page.get_by_role("button", name="Stop").click()
    stopped = log(page).get_by_role("listitem").filter(has_text="stopped")
    await expect(stopped).to_contain_text("tokens")
    await expect(streaming).to_have_count(0)
    assert (await stopped.inner_text()).count("word") < 400
    # the conversation is listed and reopens with both turns
    await page.get_by_role("button", name="New AI chat").click()
    await page.get_by_role("list", name="AI conversations").get_by_role("button").first.click()
    await expect(
        log(page).get_by_role("listitem").filter(has_text="a short one")
    ).not_to_have_count(0)


async def test_read_state_of_older_messages_shows_after_a_reload(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    alice, bob = await new_page(srv.base), await new_page(srv.base)
    b_name, room = name("bob"), name("Old ")
    await sign_up(alice, name("alice"))
    await create_room(alice, room, "shared")
    await sign_up(bob, b_name)
    await join_room(bob, room)
    await choose_model(alice, "No AI")
    await send(alice, "read me later")
    await expect(message(alice, "read me later").get_by_text(f"read by {b_name}")).to_be_visible()
    await alice.reload()
    await alice.get_by_role("button", name=room.strip()).click()
    await expect(message(alice, "read me later").get_by_text(f"read by {b_name}")).to_be_visible()


async def test_my_message_in_a_room_of_my_own_stays_delivered_after_a_reload(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    alice = await new_page(srv.base)
    room = name("Notes ")
    await sign_up(alice, name("alice"))
    await create_room(alice, room, "shared")
    await choose_model(alice, "No AI")
    await send(alice, "a note to self")
    await expect(message(alice, "a note to self").locator(".status")).to_have_text("delivered")
    await alice.reload()
    await alice.get_by_role("button", name=room.strip()).click()
    await expect(message(alice, "a note to self").locator(".status")).to_have_text("delivered")


async def test_sign_up_and_sending_work_from_the_keyboard_alone(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    page = await new_page(srv.base)
    await page.goto("/")
    await expect(page.get_by_label("Username")).to_be_focused()
    await page.keyboard.type(name("kim"))
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type("correct-horse-battery")
    await page.keyboard.press("Tab")  # Sign in
    await page.keyboard.press("Tab")  # Sign up
    await expect(page.get_by_role("button", name="Sign up")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text("connected")
    await page.get_by_role("button", name="New AI chat").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    await page.get_by_role("textbox", name="Message").focus()
    await page.keyboard.type("typed, not clicked")
    await page.keyboard.press("Enter")
    await expect(message(page, "typed, not clicked")).not_to_have_count(0)


async def test_owner_adds_and_removes_a_member_who_sees_the_room_come_and_go(
    start_server: Any, new_page: NewPage, name: Callable[[str], str]
) -> None:
    srv = await start_server()
    alice, bob = await new_page(srv.base), await new_page(srv.base)
    b_name, room = name("bob"), name("Crew ")
    await sign_up(bob, b_name)
    await sign_up(alice, name("alice"))
    await create_room(alice, room, "group")
    await alice.get_by_role("button", name="Members").click()
    await alice.get_by_label("Add member").fill(b_name[:5])
    await expect(alice.locator(f'#user-suggestions option[value="{b_name}"]')).to_be_attached()
    await alice.get_by_label("Add member").fill(b_name)
    await alice.get_by_role("button", name="Add member").click()
    await expect(alice.get_by_role("button", name=f"Remove {b_name}")).to_be_visible()
    await choose_model(alice, "No AI")
    await send(alice, "welcome aboard")  # the room's events now reach bob's page
    my_rooms = bob.get_by_role("list", name="My rooms")
    await expect(my_rooms.get_by_role("button", name=room.strip())).to_be_visible()
    await alice.get_by_role("button", name=f"Remove {b_name}").click()
    await expect(alice.get_by_role("button", name=f"Remove {b_name}")).to_have_count(0)
    await my_rooms.get_by_role("button", name=room.strip()).click()
    await expect(bob.get_by_role("alert")).to_contain_text("not a member")
    await expect(my_rooms.get_by_role("button", name=room.strip())).to_have_count(0)
