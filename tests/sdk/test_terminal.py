"""``chinwag chat`` driven under a pseudo-terminal (pexpect), against a real server."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import pexpect

from chinwag_client import Client
from tests.support import PASSWORD, Server


def spawn(srv: Server, user: str, *extra: str, password: bool = True) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k != "CHINWAG_PASSWORD"}
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"  # pexpect does not answer cursor-position queries
    if password:
        env["CHINWAG_PASSWORD"] = PASSWORD
    return pexpect.spawn(sys.executable, ["-m", "chinwag", "chat", "--url", srv.base,
                                          "--user", user, *extra],
                         env=env, dimensions=(24, 100), encoding="utf-8", timeout=20)


async def expect(child: pexpect.spawn, pattern: str) -> None:
    await asyncio.to_thread(child.expect, pattern)


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
        start_server: Callable[..., Any]) -> None:
    srv: Server = await start_server()
    await srv.user("carol")
    child = spawn(srv, "carol", "--room", "den", password=False)
    try:
        await expect(child, r"password for carol:")
        child.sendline(PASSWORD)
        await expect(child, r"joined den")
        child.sendeof()
        await expect(child, pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        child.close(force=True)
