"""``chinwag chat``: an interactive terminal chat on the SDK.

Incoming messages are printed above the prompt (prompt_toolkit's ``patch_stdout``),
so what the user is typing is never overwritten; an AI reply streams into the
bottom toolbar and is printed whole when it ends. Needs ``prompt_toolkit``
(``pip install 'chinwag-client[terminal]'``; the server's package includes it)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass, field

from chinwag_client.client import Client
from chinwag_client.errors import ChinwagError, RequestError, SignInError
from chinwag_client.models import Event

HELP = ("commands: /join ROOM, /rooms, /ai TEXT, /upload PATH, /quit; "
        "anything else is sent to the current room")
SHORT_HELP = "/join ROOM · /rooms · /ai TEXT · /upload PATH · /quit"


@dataclass
class _View:
    """What the toolbar shows: the AI reply being written, who is typing, uploads."""

    username: str
    room: str | None = None
    streams: dict[int, str] = field(default_factory=dict)  # conversation -> text so far
    typing: dict[str, set[str]] = field(default_factory=dict)  # room -> usernames
    status: str = ""
    width: int = 80

    def prompt(self) -> str:
        return f"[{self.room or 'no room'}] {self.username}> "

    def toolbar(self) -> str:
        parts = []
        if self.streams:
            text = " | ".join(self.streams.values()).replace("\n", " ")
            parts.append(f"assistant: {text[-max(20, self.width - 14):]}")
        who = sorted(self.typing.get(self.room or "", set()))
        if who:
            parts.append(f"{', '.join(who)} {'is' if len(who) == 1 else 'are'} typing…")
        if self.status:
            parts.append(self.status)
        return "  ·  ".join(parts) or SHORT_HELP


def describe(event: Event, view: _View) -> str | None:
    """The line to print for an event (None: nothing to print)."""
    d, room = event.data, event.room_id
    where = f"[{room}] " if room else ""
    if event.type == "chat" and d.get("role") == "assistant":
        conv = int(d.get("conversation_id") or 0)
        if not d.get("done"):
            view.streams[conv] = view.streams.get(conv, "") + event.content
            return None
        text = event.content or view.streams.get(conv, "")
        view.streams.pop(conv, None)
        return f"{where}assistant: {text}"
    if event.type == "chat":
        view.typing.get(room or "", set()).discard(str(d.get("username")))
        return f"{where}{d.get('username')}: {event.content}"
    if event.type == "typing":
        names = view.typing.setdefault(room or "", set())
        (names.add if d.get("is_typing") else names.discard)(str(d.get("username")))
        return None
    if event.type == "presence" and d.get("status") in ("joined", "left"):
        return f"{where}* {d.get('username')} {d.get('status')}"
    if event.type == "file_upload" and d.get("upload_type") == "complete":
        return (f"{where}{d.get('username')} shared {d.get('file_name')} "
                f"({d.get('file_size')} bytes) {d.get('url')}")
    if event.type == "room_deleted":
        return f"{where}* the room was deleted"
    if event.type == "error":
        return f"! {d.get('code')}: {d.get('error')}"
    return None


class Terminal:
    def __init__(self, client: Client, view: _View) -> None:
        from prompt_toolkit import PromptSession

        self.client = client
        self.view = view
        self.session: PromptSession[str] = PromptSession()
        self.conversation_id: int | None = None

    def toolbar(self) -> str:
        with contextlib.suppress(Exception):
            self.view.width = self.session.app.output.get_size().columns
        return self.view.toolbar()

    def refresh(self) -> None:
        with contextlib.suppress(Exception):
            self.session.app.invalidate()

    async def show_events(self) -> None:
        async for event in self.client.events():
            line = describe(event, self.view)
            if line is not None:
                print(line, flush=True)
            self.refresh()

    async def run(self) -> None:
        """Read lines until /quit. Lines are handled one after the other by a task
        of their own, so the prompt (and the toolbar with a streaming reply) stays
        on screen while a command runs."""
        from prompt_toolkit.patch_stdout import patch_stdout

        print(HELP, flush=True)
        lines: asyncio.Queue[str] = asyncio.Queue()
        with patch_stdout():
            shown = asyncio.create_task(self.show_events())
            worker = asyncio.create_task(self.work(lines))
            try:
                while True:
                    try:
                        line = await self.session.prompt_async(
                            self.view.prompt, bottom_toolbar=self.toolbar,
                            refresh_interval=0.5)
                    except (EOFError, KeyboardInterrupt):
                        break
                    if line.strip() == "/quit":
                        break
                    lines.put_nowait(line.strip())
            finally:
                for task in (worker, shown):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ChinwagError):
                        await task

    async def work(self, lines: asyncio.Queue[str]) -> None:
        while True:
            line = await lines.get()
            try:
                await self.handle(line)
            except RequestError as exc:
                print(f"! {exc.code}: {exc.message}", flush=True)
            self.refresh()

    async def handle(self, line: str) -> bool:
        """Act on one line; False when the user quits."""
        command, _, rest = line.partition(" ")
        rest = rest.strip()
        if not line:
            return True
        if command == "/quit":
            return False
        if command == "/join" and rest:
            room = await self.client.join(rest)
            self.view.room = room.room_id
            print(f"* joined {room.room_id} ({room.room_type}; members: "
                  f"{', '.join(room.members)})", flush=True)
        elif command == "/rooms":
            rooms = await self.client.my_rooms()
            print("* rooms: " + (", ".join(
                f"{r}{' (current)' if r == self.view.room else ''}" for r in rooms) or "none"),
                flush=True)
        elif command == "/ai" and rest:
            await self.ask(rest)
        elif command == "/upload" and rest:
            await self.upload(rest)
        elif command.startswith("/"):
            print(HELP, flush=True)
        elif self.view.room is None:
            print("* join a room first: /join ROOM", flush=True)
        else:
            await self.client.send(self.view.room, line)
        return True

    async def ask(self, text: str) -> None:
        """A private conversation with the AI, streamed into the toolbar."""
        stream = self.client.ask_stream(text, conversation_id=self.conversation_id)
        key = -1
        async for chunk in stream:
            self.view.streams[key] = self.view.streams.get(key, "") + chunk
            self.refresh()
        self.view.streams.pop(key, None)
        reply = stream.reply
        assert reply is not None
        self.conversation_id = reply.conversation_id
        print(f"assistant: {reply.text}", flush=True)
        print(f"  ({reply.tokens_used} tokens, {reply.model_used}, ${reply.cost_usd:.4f})",
              flush=True)

    async def upload(self, typed: str) -> None:
        path = _expand(typed)

        def progress(sent: int, total: int) -> None:
            self.view.status = f"uploading {os.path.basename(path)}: {sent}/{total} bytes"
            self.refresh()

        try:
            done = await self.client.upload(path, room_id=self.view.room,
                                            progress=progress)
        except OSError as exc:
            print(f"! cannot read {path}: {exc.strerror}", flush=True)
            return
        finally:
            self.view.status = ""
        if self.view.room is None:
            print(f"* uploaded {done.file_name} ({done.file_size} bytes) {done.url}", flush=True)


def _expand(path: str) -> str:
    return os.path.expanduser(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("CHINWAG_URL", "http://127.0.0.1:8000"),
                        help="the server (default: $CHINWAG_URL or http://127.0.0.1:8000)")
    parser.add_argument("--user", default=os.environ.get("CHINWAG_USER"),
                        help="username (default: $CHINWAG_USER, else asked)")
    parser.add_argument("--room", help="join this room (a shared room) at once")


def run(args: argparse.Namespace) -> int:
    """Run the chat; the password comes from CHINWAG_PASSWORD or is asked."""
    from prompt_toolkit import prompt

    try:
        user = args.user or prompt("username: ")
        password = os.environ.get("CHINWAG_PASSWORD") or prompt(
            f"password for {user}: ", is_password=True)
    except (EOFError, KeyboardInterrupt):
        return 1
    try:
        return asyncio.run(_chat(args.url, user, password, args.room))
    except SignInError as exc:
        print(f"chinwag chat: {exc}", file=sys.stderr)
        return 1
    except (ChinwagError, OSError) as exc:
        print(f"chinwag chat: {exc}", file=sys.stderr)
        return 1


async def _chat(url: str, user: str, password: str, room: str | None) -> int:
    async with Client(url, user, password) as client:
        view = _View(user)
        terminal = Terminal(client, view)
        if room:
            await terminal.handle(f"/join {room}")
        await terminal.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chinwag-chat", description="chinwag terminal chat")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
