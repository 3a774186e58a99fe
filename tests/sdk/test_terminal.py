"""``chinwag chat`` driven under a pseudo-terminal (pexpect), against a real server."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect

from chinwag_client import Client, Event
from tests.support import PASSWORD, Server


def spawn(
    srv: Server, user: str, *extra: str, password: bool = True, log: Path | None = None
) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k != "CHINWAG_PASSWORD"}
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"  # pexpect does not answer cursor-position queries
    if password:
        env["CHINWAG_PASSWORD"] = PASSWORD
    child = pexpect.spawn(
        sys.executable,
        ["-m", "chinwag", "chat", "--url", srv.base, "--user", user, *extra],
        env=env,
        dimensions=(24, 100),
        encoding="utf-8",
        timeout=20,
    )
    if log is not None:
        child.logfile_read = log.open("w", encoding="utf-8")  # what the terminal showed
    return child


async def expect(child: pexpect.spawn, pattern: str | type[pexpect.EOF]) -> None:
    await asyncio.to_thread(child.expect, pattern)


async def expect_match(child: pexpect.spawn, pattern: str) -> re.Match[str]:
    await expect(child, pattern)
    assert isinstance(child.match, re.Match)
    return child.match


async def next_of(client: Client, kind: str, by: str | None = None, timeout: float = 20) -> Event:
    """The next event of ``kind`` (from ``by`` when given) on the client's events()."""
    async with asyncio.timeout(timeout):
        async for event in client.events():
            if event.type == kind and by in (None, event.username):
                return event
    raise AssertionError("events() ended")


async def test_chat_joins_receives_sends_and_quits(start_server: Callable[..., Any]) -> None:
    srv: Server = await start_server()
    await srv.user("alice")
    await srv.user("bob")
    child = spawn(srv, "alice", "--room", "lobby")
    try:
        await expect(child, r"joined lobby")
        async with Client(srv.base, "bob", PASSWORD) as bob:
            await bob.join("lobby")
            await bob.send("lobby", "hello from bob")
            await expect(child, r"bob: hello from bob")
            child.sendline("hi bob")
            async with asyncio.timeout(20):
                async for event in bob.events():
                    if event.type == "chat" and event.username == "alice":
                        break
            assert event.content == "hi bob"
            child.sendline("/ai what is chinwag?")
            await expect(child, r"assistant: This is chinwag")
            await expect(child, r"\d+ tokens, chinwag-offline")
            child.sendline("/rooms")
            await expect(child, r"rooms: lobby \(current\)")
        child.sendline("/quit")
        await expect(child, pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        child.close(force=True)


async def test_chat_asks_for_the_password_when_it_is_not_in_the_environment(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server()
    await srv.user("carol")
    child = spawn(srv, "carol", "--room", "den", password=False)
    try:
        await expect(child, r"password for carol:")
        child.sendline(PASSWORD)
        await expect(child, r"joined den")
        await expect(child, r"\[den\] carol>")  # the prompt is reading keys now
        child.sendcontrol("d")
        await expect(child, pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        child.close(force=True)


async def test_chat_edits_a_message_by_its_number_and_searches(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    srv: Server = await start_server()
    await srv.user("alice")
    await srv.user("bob")
    child = spawn(srv, "alice", "--room", "lobby", log=tmp_path / "edit-search.log")
    try:
        await expect(child, r"joined lobby")
        async with Client(srv.base, "bob", PASSWORD) as bob:
            await bob.join("lobby")
            await bob.send("lobby", "is the plan ready?")
            await expect(child, r"\[lobby #\d+\] bob: is the plan ready\?")
            child.sendline("teh plan is ready")
            seq = (await expect_match(child, r"\[lobby #(\d+)\] alice: teh plan is ready"))[1]
            child.sendline(f"/edit {seq} the plan is ready")
            await expect(child, rf"\[lobby #{seq}\] alice: the plan is ready \(edited\)")
            edited = await next_of(bob, "message_edited")
            assert (edited.content, edited.username) == ("the plan is ready", "alice")
            child.sendline("/search plan ready")
            await expect(child, r'2 messages found for "plan ready":')
            await expect(
                child,
                rf"\[lobby #{seq}\] alice \(\d{{4}}-\d\d-\d\d \d\d:\d\d\): "
                r"the plan is ready",
            )
            await expect(child, r"\[lobby #\d+\] bob \(.{16}\): is the plan ready\?")
            child.sendline("/edit 999 nothing")
            await expect(child, r"no message #999 in lobby")
        child.sendline("/quit")
        await expect(child, pexpect.EOF)
    finally:
        child.close(force=True)


async def test_chat_shows_and_sends_replies_reactions_deletions_and_mentions(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    srv: Server = await start_server()
    await srv.user("alice")
    await srv.user("bob")
    async with Client(srv.base, "bob", PASSWORD) as bob:
        await bob.join("lobby")
        early = await bob.send("lobby", "said before alice came")
    child = spawn(srv, "alice", "--room", "lobby", log=tmp_path / "ops.log")
    try:
        await expect(child, r"joined lobby")
        async with Client(srv.base, "bob", PASSWORD) as bob:
            child.sendline(f"/react {early.seq} 👀")  # not shown here: read from history
            seen = await next_of(bob, "reaction", by="alice")
            assert (seen.emoji, seen.message_id) == ("👀", early.server_message_id)
            lunch = await bob.send("lobby", "lunch at noon, at the usual place by the river?")
            await expect(child, rf"\[lobby #{lunch.seq}\] bob: lunch at noon")
            child.sendline(f"/reply {lunch.seq} yes please")
            reply = await next_of(bob, "chat", by="alice")
            assert (reply.content, reply.reply_to) == ("yes please", lunch.server_message_id)
            await expect(
                child,
                rf"\[lobby #{reply.seq}\] alice \(reply to #{lunch.seq} "
                r'\(bob: "lunch at noon, at the usual place by th…"\)\): '
                r"yes please",
            )
            assert reply.message_id is not None
            await bob.react("lobby", reply.message_id, "👍")
            await expect(child, rf'\* bob reacted 👍 to #{reply.seq} \(alice: "yes please"\)')
            child.sendline(f"/react lobby#{lunch.seq} 🎉")
            reaction = await next_of(bob, "reaction", by="alice")
            assert (reaction.emoji, reaction.username, reaction.message_id, reaction.on) == (
                "🎉",
                "alice",
                lunch.server_message_id,
                True,
            )
            child.sendline(f"/unreact {lunch.seq} 🎉")
            taken = await next_of(bob, "reaction", by="alice")
            assert (taken.emoji, taken.on) == ("🎉", False)
            await expect(child, rf"\* alice took back 🎉 on #{lunch.seq}")
            child.sendline(f"/edit {lunch.seq} dinner instead")
            await expect(child, r"! FORBIDDEN: only its author may edit a message")
            ping = await bob.send("lobby", "@alice are you coming?")
            await expect(child, rf"\* bob mentioned you in #{ping.seq}")
            await bob.delete("lobby", lunch.server_message_id)
            await expect(child, rf"\* bob deleted #{lunch.seq}")
            child.sendline(f"/delete {reply.seq}")
            deleted = await next_of(bob, "message_deleted", by="alice")
            assert deleted.message_id == reply.message_id
            await expect(child, rf"\* alice deleted #{reply.seq}")
        child.sendline("/quit")
        await expect(child, pexpect.EOF)
    finally:
        child.close(force=True)
