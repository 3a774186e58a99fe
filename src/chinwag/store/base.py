"""What the rest of chinwag may ask of storage: plain records and small interfaces.

The database is the truth: it assigns every room event its per-room ``seq``
(gapless, strictly increasing, also with several processes writing), and it is the
offline queue ("events after seq N"). Implementations live in ``store.sql``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from chinwag.store.files import FileStore, UploadStore
from chinwag.store.messages import MessageStore, SearchIndex


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    password_hash: str
    is_admin: bool
    created_at: datetime
    disabled: bool = False
    budget_tokens_per_day: int | None = None  # per-user override; None: the default
    budget_usd_per_month: float | None = None


@dataclass(frozen=True, slots=True)
class RoomRecord:
    id: int
    room_id: str
    room_name: str
    room_type: str
    owner: str
    created_at: datetime
    last_seq: int
    history_visibility: str = "shared"  # "joined" or "shared" (see core/visibility.py)
    members_version: int = 0  # changes whenever the room's membership changes


@dataclass(frozen=True, slots=True)
class MemberRecord:
    username: str
    joined_at: datetime
    delivered_seq: int
    read_seq: int
    joined_seq: int = 0  # the room's last seq when this membership began


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored room event. ``data`` is the event's payload as sent on the wire."""

    id: int
    room_id: str
    seq: int
    type: str
    data: dict[str, Any]
    sender: str | None
    client_message_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Appended:
    event: EventRecord
    duplicate: bool  # True: the (sender, client_message_id) was stored before; nothing new
    members_version: int | None = None  # changes whenever the room's membership changes


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: int
    owner: str
    title: str
    room_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TurnRecord:
    id: int
    conversation_id: int
    role: str
    content: str
    username: str | None
    model: str | None
    tokens_used: int
    cost_usd: float
    client_message_id: str | None
    created_at: datetime
    parent_id: int | None = None  # the turn this one follows on its branch


class UserStore(Protocol):
    async def create(self, username: str, password_hash: str, is_admin: bool = False) -> UserRecord:
        """Raises Conflict when the name is taken."""

    async def get(self, username: str) -> UserRecord | None: ...
    async def upsert_admin(self, username: str, password_hash: str) -> UserRecord: ...
    async def list_all(self, limit: int = 1000) -> list[UserRecord]:
        """Every user, by name."""

    async def with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Usernames starting with ``prefix`` (case-insensitive), by name."""

    async def update(self, username: str, changes: UserChanges) -> UserRecord | None:
        """Apply the fields of ``changes`` that are set; None when the user does not exist."""


@dataclass(frozen=True, slots=True)
class Budget:
    """A user's AI budget override; a None field means "the server's default"."""

    tokens_per_day: int | None = None
    usd_per_month: float | None = None


@dataclass(frozen=True, slots=True)
class UserChanges:
    """An admin's change to an account; a None field stays as it is
    (``budget=Budget()`` returns the user to the default budget)."""

    disabled: bool | None = None
    is_admin: bool | None = None
    budget: Budget | None = None


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """One of a user's rooms as their room list shows it."""

    room: RoomRecord
    read_seq: int
    unread: int  # chat messages from others after the user's read cursor
    last_message: EventRecord | None  # the newest chat in the room


@dataclass(frozen=True, slots=True)
class UserSpend:
    tokens_used: int
    cost_usd: float


class RoomStore(Protocol):
    async def create(
        self,
        room_id: str,
        room_name: str,
        room_type: str,
        owner: str,
        *,
        max_owned: int | None = None,
        history_visibility: str = "shared",
    ) -> RoomRecord:
        """Create the room with its owner as first member. Raises Conflict if it exists,
        RoomLimit if ``owner`` already owns ``max_owned`` rooms (counted in the
        transaction that creates, so concurrent creates cannot overshoot it)."""

    async def get(self, room_id: str) -> RoomRecord | None: ...
    async def delete(self, room_id: str) -> bool: ...
    async def delete_with_files(self, room_id: str) -> list[str] | None:
        """Delete the room with everything in it; the ``stored_name`` of each file that
        was shared in it (read in the deleting transaction, so none is missed), or
        None when there was no such room."""

    async def set_history_visibility(self, room_id: str, value: str) -> bool: ...
    async def add_member(
        self, room_id: str, username: str, *, max_members: int | None = None
    ) -> bool:
        """True when the user was not a member before. The new member starts with
        delivered/read cursors and ``joined_seq`` at the room's current seq.
        With ``max_members`` a room that already has that many raises Conflict; the
        count is checked in the transaction that adds, so concurrent adds cannot
        overshoot it."""

    async def remove_member(self, room_id: str, username: str) -> bool: ...
    async def members(self, room_id: str) -> list[str]: ...
    async def members_versioned(self, room_id: str) -> tuple[int, list[str]]:
        """The members and the room's membership version, read together."""

    async def member(self, room_id: str, username: str) -> MemberRecord | None: ...
    async def rooms_of(self, username: str) -> list[tuple[RoomRecord, MemberRecord]]: ...
    async def count_by_type(self) -> dict[str, int]: ...
    async def pending_counts(self) -> dict[str, int]:
        """Per user, stored events beyond their delivered cursor (all rooms)."""

    async def advance_delivered(self, room_id: str, username: str, seq: int) -> int | None:
        """Move the member's delivered cursor up to ``seq``; return the old value if it
        moved (so exactly one caller reports those deliveries), else None."""

    async def advance_read(self, room_id: str, username: str, seq: int) -> int | None:
        """As advance_delivered, for the read cursor (delivered follows it up)."""


class EventStore(Protocol):
    async def append(
        self,
        room_id: str,
        type: str,
        data: dict[str, Any],
        *,
        sender: str | None = None,
        client_message_id: str | None = None,
        require_member: bool = False,
    ) -> Appended:
        """Store one room event under the room's next seq, atomically.

        With ``client_message_id`` the pair (sender, id) is an idempotency key: a
        repeat returns the first event with ``duplicate=True``. With
        ``require_member`` a sender who is not a member raises NotInRoom. A missing
        room raises NotFound."""

    async def find(self, room_id: str, sender: str, client_message_id: str) -> EventRecord | None:
        """The event ``sender`` stored with that client id, if any."""

    async def after(self, room_id: str, after_seq: int, limit: int = 1000) -> list[EventRecord]:
        """Events with seq > after_seq, oldest first."""

    async def before(
        self, room_id: str, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> list[EventRecord]:
        """The ``limit`` newest events with after_seq < seq < before_seq, oldest first."""

    async def chats_between(
        self, room_id: str, after_seq: int, upto_seq: int, exclude_sender: str
    ) -> list[EventRecord]:
        """Stored chat events in (after_seq, upto_seq] whose sender is someone else."""

    async def count(self) -> int: ...


class ConversationStore(Protocol):
    async def create(self, owner: str, title: str, room_id: str | None) -> ConversationRecord: ...
    async def get(self, conversation_id: int) -> ConversationRecord | None: ...
    async def list_for(self, owner: str) -> list[ConversationRecord]: ...
    async def add_turn(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        username: str | None = None,
        model: str | None = None,
        tokens_used: int = 0,
        cost_usd: float = 0.0,
        client_message_id: str | None = None,
        parent_id: int | None = None,
    ) -> TurnRecord: ...
    async def turns(self, conversation_id: int, limit: int = 200) -> list[TurnRecord]:
        """The newest ``limit`` turns of every branch, oldest first."""

    async def turn(self, turn_id: int) -> TurnRecord | None: ...
    async def branch(
        self, conversation_id: int, leaf_id: int | None = None, limit: int = 1000
    ) -> list[TurnRecord]:
        """The turns from the root to ``leaf_id`` (default: the newest turn, which ends
        the active branch), oldest first; at most the ``limit`` nearest the leaf. Empty
        when the leaf is not a turn of that conversation."""

    async def siblings(self, conversation_id: int, turns: list[TurnRecord]) -> dict[int, list[int]]:
        """For each of ``turns``: the ids of the turns sharing its parent (itself
        included), oldest first."""

    async def find_turn(self, username: str, client_message_id: str) -> TurnRecord | None: ...


@dataclass(frozen=True, slots=True)
class Windows:
    """The instants the budget windows began (UTC day and month) and the time now."""

    day_start: datetime
    month_start: datetime
    now: datetime


@dataclass(frozen=True, slots=True)
class Usage:
    tokens_today: int
    usd_this_month: float
    reserved_tokens: int
    reserved_usd: float
    running: int


#: Why a reservation was refused: the user runs ``max_running`` replies already, the
#: conversation has a reply running, or a budget would be exceeded.
Refusal = Literal["concurrency", "conversation", "tokens", "usd"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What a reply asks to hold while it runs."""

    username: str
    conversation_id: int | None
    tokens: int
    usd: float
    node_id: str


class BudgetStore(Protocol):
    async def reserve(
        self,
        claim: Claim,
        budget: Budget,
        max_running: int,
        windows: Windows,
        lease_until: datetime,
    ) -> int | Refusal:
        """Atomically check the user's running replies, the conversation and both
        budgets (what is spent plus what is reserved plus ``claim``) and, when all fit,
        store the claim as a running reply: its id. Concurrent calls, from any
        process, never both pass a limit that only one of them fits."""

    async def attach(self, reply_id: int, conversation_id: int) -> None:
        """Record the conversation of a reply reserved before its conversation existed."""

    async def settle(self, reply_id: int, tokens: int, usd: float) -> None:
        """End the reply, billing what it used (never more than it reserved)."""

    async def extend(self, reply_ids: list[int], lease_until: datetime) -> None:
        """Renew the leases of running replies."""

    async def running_in(self, conversation_id: int, now: datetime) -> tuple[str, str] | None:
        """(username, node_id) of the reply running in the conversation, if any."""

    async def usage(self, username: str, windows: Windows) -> Usage: ...


def conversation_title(first_message: str) -> str:
    """A conversation's title: its first message, on one line, shortened."""
    return " ".join(first_message.split())[:80] or "conversation"


class DirectoryStore(Protocol):
    """Read-only overviews for the room list and the admin page."""

    async def summaries(self, username: str) -> list[RoomSummary]:
        """The user's rooms, each with its unread count and newest chat message."""

    async def rooms(self, room_type: str | None, limit: int) -> list[tuple[RoomRecord, int]]:
        """Rooms (of one type, or all) with their member counts, by room id."""

    async def cursors(self, room_id: str) -> list[MemberRecord]:
        """Every member of the room with their delivered and read cursors."""

    async def spend(self) -> dict[str, UserSpend]:
        """AI tokens and cost per user (the owner of each conversation), all time."""


class Store(Protocol):
    @property
    def users(self) -> UserStore: ...
    @property
    def rooms(self) -> RoomStore: ...
    @property
    def events(self) -> EventStore: ...
    @property
    def conversations(self) -> ConversationStore: ...
    @property
    def files(self) -> FileStore: ...
    @property
    def budgets(self) -> BudgetStore: ...
    @property
    def uploads(self) -> UploadStore: ...
    @property
    def messages(self) -> MessageStore: ...
    @property
    def search(self) -> SearchIndex: ...
    @property
    def directory(self) -> DirectoryStore: ...

    async def healthy(self) -> bool: ...
    async def close(self) -> None: ...
