"""Hands stored room events to the application exactly once, in seq order per room.

Invariant: ``last[room]`` is the seq of the last event of that room handed over;
an event at or below it is a duplicate (a replay, a resend after a drop). An event
that comes early waits in ``early`` until the ones before it arrive, or until a
``sync`` answer shows they were never meant for this user (the server skips a
user's own join/leave events).

An ephemeral event about a stored one (a ``mention`` of a chat) waits in ``after``
until that stored event was handed over, so the application never hears of a
chat before the chat itself."""

from __future__ import annotations

from chinwag_client.models import Event


class RoomOrder:
    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.early: dict[str, dict[int, Event]] = {}
        self.after: dict[str, list[tuple[int, Event]]] = {}

    def offer(self, event: Event) -> list[Event]:
        """The events now ready for the application, in order (possibly none)."""
        room, seq = event.room_id, event.seq
        assert room is not None and seq is not None
        last = self.last.get(room)
        if last is not None and seq <= last:
            return []
        if last is not None and seq > last + 1:
            self.early.setdefault(room, {})[seq] = event
            return []
        self.last[room] = seq  # the first event of a room not seen before sets its start
        return self._release(room, [event, *self._drain(room)])

    def offer_after(self, event: Event, seq: int) -> list[Event]:
        """``event`` (ephemeral) is about the stored event ``seq`` of its room: ready
        now if that one was handed over, else when it is."""
        room = event.room_id
        assert room is not None
        if self.last.get(room, 0) >= seq:
            return [event]
        self.after.setdefault(room, []).append((seq, event))
        return []

    def has_gap(self, room: str) -> bool:
        return bool(self.early.get(room))

    def synced(self, room: str, upto: int) -> list[Event]:
        """A ``sync`` replay of ``room`` ended at ``upto``: whatever is still missing
        up to there will not come, so the early events up to it are handed over."""
        early = self.early.get(room, {})
        ready = [early.pop(seq) for seq in sorted(s for s in early if s <= upto)]
        last = self.last.get(room, 0)
        ready = [e for e in ready if e.seq is not None and e.seq > last]
        self.last[room] = max([last, upto, *(e.seq for e in ready if e.seq is not None)])
        return self._release(room, ready + self._drain(room))

    def forget(self, room: str) -> None:
        self.last.pop(room, None)
        self.early.pop(room, None)
        self.after.pop(room, None)

    def _release(self, room: str, ready: list[Event]) -> list[Event]:
        """``ready``, each followed by the waiting events about it."""
        waiting = self.after.get(room)
        if not waiting:
            return ready
        out: list[Event] = []
        for event in ready:
            out.append(event)
            out.extend(e for seq, e in waiting if seq == event.seq)
        last = self.last[room]
        out.extend(e for seq, e in waiting if seq <= last and e not in out)
        kept = [(seq, e) for seq, e in waiting if seq > last]
        if kept:
            self.after[room] = kept
        else:
            del self.after[room]
        return out

    def _drain(self, room: str) -> list[Event]:
        early = self.early.get(room)
        ready: list[Event] = []
        while early and (nxt := early.pop(self.last[room] + 1, None)) is not None:
            ready.append(nxt)
            self.last[room] += 1
        if early is not None and not early:
            del self.early[room]
        return ready
