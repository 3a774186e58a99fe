"""Who reads which part of a room's history, like Matrix's ``history_visibility``.

- ``joined``: a member reads the events after the seq at which their membership
  began; a non-member reads none. The default for private rooms, whose second member
  can be replaced: the newcomer does not read what was said before.
- ``shared``: every member (and anyone, in a shared room) reads the whole history.
  The default for group and shared rooms, as in Slack channels.

The room's current setting applies to its whole history (the owner may change it).
Admins read everything. History over HTTP and ``sync`` start after ``visible_after``;
the offline queue and live delivery start at the member's delivered cursor, which
never lies before their join."""

from __future__ import annotations

from typing import Literal

from chinwag.store.base import MemberRecord, RoomRecord

HistoryVisibility = Literal["joined", "shared"]
JOINED: HistoryVisibility = "joined"
SHARED: HistoryVisibility = "shared"
VISIBILITIES: tuple[str, ...] = (JOINED, SHARED)


def default_for(room_type: str) -> HistoryVisibility:
    return JOINED if room_type == "private" else SHARED


def visible_after(room: RoomRecord, member: MemberRecord | None, is_admin: bool) -> int:
    """The seq after which this reader may see the room's stored events."""
    if is_admin or room.history_visibility != JOINED:
        return 0
    return member.joined_seq if member is not None else room.last_seq
