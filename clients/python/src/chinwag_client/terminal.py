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

HELP = """commands:
  /join ROOM          join (or create) a shared room and make it current
  /rooms              the rooms you belong to
  /ai TEXT            ask the AI privately
  /upload PATH        share a file in the current room
  /reply N TEXT       answer message #N     /edit N TEXT      change your message #N
  /delete N           delete message #N     /react N EMOJI    react (/unreact N EMOJI)
  /search WORDS       find messages in your rooms
  /help, /quit
N is the number shown as [room #N] (ROOM#N for another room than the current one);
anything else is sent to the current room"""
SHORT_HELP = (
    "/join ROOM · /ai TEXT · /reply N TEXT · /edit N TEXT · /react N EMOJI · "
    "/search WORDS · /help · /quit"
)
SNIPPET = 40  # characters of a message quoted beside a reply or a reaction
REMEMBERED = 5000  # messages kept per session to act on by number and to quote


@dataclass
class _Said:
    """A message shown, as the terminal knows it now."""

    message_id: int
    username: str
    content: str
    deleted: bool = False


@dataclass
class _View:
    """What the toolbar shows (the AI reply being written, who is typing, uploads),
    and the messages shown, by room and seq, to act on and quote."""

    username: str
    room: str | None = None
    streams: dict[int, str] = field(default_factory=dict)  # conversation -> text so far
    typing: dict[str, set[str]] = field(default_factory=dict)  # room -> usernames
    status: str = ""
    width: int = 80
    said: dict[tuple[str, int], _Said] = field(default_factory=dict)  # (room, seq)
    seq_of: dict[tuple[str, int], int] = field(default_factory=dict)  # (room, message id)

    def prompt(self) -> str:
        return f"[{self.room or 'no room'}] {self.username}> "

    def toolbar(self) -> str:
        parts = []
        if self.streams:
            text = " | ".join(self.streams.values()).replace("\n", " ")
            parts.append(f"assistant: {text[-max(20, self.width - 14) :]}")
        who = sorted(self.typing.get(self.room or "", set()))
        if who:
            parts.append(f"{', '.join(who)} {'is' if len(who) == 1 else 'are'} typing…")
        if self.status:
            parts.append(self.status)
        return "  ·  ".join(parts) or SHORT_HELP

    def remember(self, room: str, seq: int, said: _Said) -> None:
        self.said[(room, seq)] = said
        self.seq_of[(room, said.message_id)] = seq
        if len(self.said) > REMEMBERED:
            (old_room, old_seq), old = next(iter(self.said.items()))
            del self.said[(old_room, old_seq)]
            self.seq_of.pop((old_room, old.message_id), None)

    def about(self, room: str, message_id: int | None) -> tuple[str, _Said | None]:
        """``#seq`` of a message by its server id, and what is known of it."""
        seq = self.seq_of.get((room, message_id or 0))
        if seq is None:
            return "a message", None
        return f"#{seq}", self.said.get((room, seq))


def quote(said: _Said | None) -> str:
    """`` (alice: "the first words…")`` of a message, or nothing when unknown."""
    if said is None:
        return ""
    if said.deleted:
        return f" ({said.username}, deleted)"
    text = " ".join(said.content.split())
    if len(text) > SNIPPET:
        text = text[: SNIPPET - 1] + "…"
    return f' ({said.username}: "{text}")'


def describe(event: Event, view: _View) -> str | None:
    """The line to print for an event (None: nothing to print)."""
    d, room = event.data, event.room_id
    where = f"[{room}] " if room else ""
    at = f"[{room} #{event.seq}] " if room and event.seq is not None else where
    if event.type == "chat" and d.get("role") == "assistant":
        conv = int(d.get("conversation_id") or 0)
        if not d.get("done"):
            view.streams[conv] = view.streams.get(conv, "") + event.content
            return None
        text = event.content or view.streams.get(conv, "")
        view.streams.pop(conv, None)
        _remember(view, event, "assistant", text)
        return f"{at}assistant: {text}"
    if event.type == "chat":
        user = str(d.get("username"))
        view.typing.get(room or "", set()).discard(user)
        _remember(view, event, user, event.content)
        if event.reply_to is not None and room:
            target, said = view.about(room, event.reply_to)
            user = f"{user} (reply to {target}{quote(said)})"
        if event.deleted:
            return f"{at}{user}: (deleted)"
        return f"{at}{user}: {event.content}{' (edited)' if event.edited_at else ''}"
    if event.type == "message_edited" and room and not event.deleted:
        target, said = view.about(room, event.message_id)
        if said is not None:
            said.content = event.content
        if target.startswith("#"):
            return f"[{room} {target}] {event.username}: {event.content} (edited)"
        return f"{where}{event.username} edited a message: {event.content} (edited)"
    if event.type == "message_deleted" and room:
        target, said = view.about(room, event.message_id)
        if said is not None:
            said.deleted, said.content = True, ""
        return f"{where}* {event.username} deleted {target}"
    if event.type == "reaction" and room:
        target, said = view.about(room, event.message_id)
        done = f"reacted {event.emoji} to" if event.on else f"took back {event.emoji} on"
        return f"{where}* {event.username} {done} {target}{quote(said)}"
    if event.type == "mention" and room:
        target, said = view.about(room, event.message_id)
        if not target.startswith("#") and event.mention_seq is not None:
            target = f"#{event.mention_seq}"
        return f"{where}* {event.mentioned_by} mentioned you in {target}"
    if event.type == "typing":
        names = view.typing.setdefault(room or "", set())
        (names.add if d.get("is_typing") else names.discard)(str(d.get("username")))
        return None
    if event.type == "presence" and d.get("status") in ("joined", "left"):
        return f"{where}* {d.get('username')} {d.get('status')}"
    if event.type == "file_upload" and d.get("upload_type") == "complete":
        return (
            f"{where}{d.get('username')} shared {d.get('file_name')} "
            f"({d.get('file_size')} bytes) {d.get('url')}"
        )
    if event.type == "room_deleted":
        return f"{where}* the room was deleted"
    if event.type == "error":
        return f"! {d.get('code')}: {d.get('error')}"
    return None


def _remember(view: _View, event: Event, username: str, content: str) -> None:
    if event.room_id and event.seq is not None and event.message_id is not None:
        view.remember(
            event.room_id, event.seq, _Said(event.message_id, username, content, event.deleted)
        )


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
                            self.view.prompt, bottom_toolbar=self.toolbar, refresh_interval=0.5
                        )
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
            print(
                f"* joined {room.room_id} ({room.room_type}; members: {', '.join(room.members)})",
                flush=True,
            )
        elif command == "/rooms":
            rooms = await self.client.my_rooms()
            print(
                "* rooms: "
                + (
                    ", ".join(f"{r}{' (current)' if r == self.view.room else ''}" for r in rooms)
                    or "none"
                ),
                flush=True,
            )
        elif command == "/ai" and rest:
            await self.ask(rest)
        elif command == "/upload" and rest:
            await self.upload(rest)
        elif command == "/search" and rest:
            await self.search(rest)
        elif command in _ON_MESSAGE:
            await self.on_message(command, rest)
        elif command.startswith("/"):
            print(HELP, flush=True)
        elif self.view.room is None:
            print("* join a room first: /join ROOM", flush=True)
        else:
            await self.client.send(self.view.room, line)
        return True

    async def on_message(self, command: str, rest: str) -> None:
        """``/reply``, ``/edit``, ``/delete``, ``/react``, ``/unreact``: the first
        word names the message (``N``, ``#N`` or ``ROOM#N``)."""
        usage, needs_text = _ON_MESSAGE[command]
        handle, _, text = rest.partition(" ")
        text = text.strip()
        target = self.target(handle)
        if target is None or (needs_text and not text):
            print(f"* usage: {usage}", flush=True)
            return
        room, seq = target
        said = await self.message_at(room, seq)
        if said is None:
            print(f"* no message #{seq} in {room}", flush=True)
            return
        mid = said.message_id
        if command == "/reply":
            await self.client.send(room, text, reply_to=mid)
            return
        if command == "/edit":
            change = await self.client.edit(room, mid, text)
        elif command == "/delete":
            change = await self.client.delete(room, mid)
        else:
            change = await self.client.react(room, mid, text, on=command == "/react")
        if change.unchanged:
            print(f"* #{seq}: nothing to change", flush=True)

    def target(self, handle: str) -> tuple[str, int] | None:
        """(room, seq) from ``N``, ``#N`` or ``ROOM#N`` (None: not a message number)."""
        room, sep, number = handle.rpartition("#")
        room = room if sep and room else (self.view.room or "")
        if not number.isdigit() or not room:
            return None
        return room, int(number)

    async def message_at(self, room: str, seq: int) -> _Said | None:
        """The message shown as ``[room #seq]``; one not seen in this session (said
        before it started) is read from the room's history."""
        said = self.view.said.get((room, seq))
        if said is not None:
            return said
        for event in await self.client.history(room, before_seq=seq + 1, limit=1):
            if event.seq == seq and event.type == "chat" and event.message_id is not None:
                said = _Said(event.message_id, str(event.username), event.content, event.deleted)
                self.view.remember(room, seq, said)
                return said
        return None

    async def search(self, words: str) -> None:
        found = await self.client.search(words)
        if not found:
            print(f'* no messages found for "{words}"', flush=True)
            return
        print(
            f'* {len(found)} message{"s" if len(found) != 1 else ""} found for "{words}":',
            flush=True,
        )
        for hit in found:
            when = hit.timestamp[:16].replace("T", " ")
            text = " ".join(hit.content.split())
            print(f"  [{hit.room_id} #{hit.seq}] {hit.username} ({when}): {text}", flush=True)

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
        print(
            f"  ({reply.tokens_used} tokens, {reply.model_used}, ${reply.cost_usd:.4f})", flush=True
        )

    async def upload(self, typed: str) -> None:
        path = _expand(typed)

        def progress(sent: int, total: int) -> None:
            self.view.status = f"uploading {os.path.basename(path)}: {sent}/{total} bytes"
            self.refresh()

        try:
            done = await self.client.upload(path, room_id=self.view.room, progress=progress)
        except OSError as exc:
            print(f"! cannot read {path}: {exc.strerror}", flush=True)
            return
        finally:
            self.view.status = ""
        if self.view.room is None:
            print(f"* uploaded {done.file_name} ({done.file_size} bytes) {done.url}", flush=True)


_ON_MESSAGE = {  # command: (usage, whether text must follow the number)
    "/reply": ("/reply N TEXT", True),
    "/edit": ("/edit N TEXT", True),
    "/delete": ("/delete N", False),
    "/react": ("/react N EMOJI", True),
    "/unreact": ("/unreact N EMOJI", True),
}


def _expand(path: str) -> str:
    return os.path.expanduser(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("CHINWAG_URL", "http://127.0.0.1:8000"),
        help="the server (default: $CHINWAG_URL or http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--user",
        default=os.environ.get("CHINWAG_USER"),
        help="username (default: $CHINWAG_USER, else asked)",
    )
    parser.add_argument("--room", help="join this room (a shared room) at once")


def run(args: argparse.Namespace) -> int:
    """Run the chat; the password comes from CHINWAG_PASSWORD or is asked."""
    from prompt_toolkit import prompt

    try:
        user = args.user or prompt("username: ")
        password = os.environ.get("CHINWAG_PASSWORD") or prompt(
            f"password for {user}: ", is_password=True
        )
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
