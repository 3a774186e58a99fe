"""Exactly-once, in-order delivery of one room's stored events to one connection.

A sans-I/O state machine: it is told what arrived (a live event from the broker, a
page read from the store) and answers what to do with it; it never waits, reads or
writes. The hub does the waiting and the store reads, the session does the sending.

State, per connection and room:

- ``seq``: the last seq handed to the connection's outbox;
- ``catching_up``: a gap is being filled (from the broker within a grace period,
  else from the store); live events meanwhile are held, not delivered;
- ``pending``: held live events (seq -> frame text, ``None`` for one to skip),
  at most ``limit`` of them (the lowest); beyond that only ``horizon`` is kept and
  the store read brings the rest, since every held event is stored;
- ``horizon``: while catching up, the highest seq known to exist (the catch-up
  is done only when ``seq`` reaches it).

A live event, by ``offer``:

=====================  ======================================  ============
condition              what happens                            answer
=====================  ======================================  ============
seq <= seq             nothing (a duplicate)                   DUPLICATE
catching up            held                                    HOLD
seq == seq + 1         seq advances; send the frame            DELIVER
seq >  seq + 1         held; catching up starts                FILL_GAP
=====================  ======================================  ============

A store page, by ``fresh`` (the events to send, each confirmed with ``advance``
as it is sent) and then ``page_done``: held events now in order are released;
a full page means READ again; the gap closed means DONE; a short page with the
gap still open means READ again, or RETRY shortly when the page was empty (the
missing event is committed but not yet visible). A seq that stays unreadable for
``STALL_LIMIT`` empty pages (its room was deleted) is skipped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

#: Answers of ``offer`` (plain ints: it runs once per recipient of every event).
DELIVER: Final = 0
DUPLICATE: Final = 1
HOLD: Final = 2
FILL_GAP: Final = 3

#: What the catch-up does after a page (``PageOutcome.step``).
DONE: Final = "done"
READ: Final = "read"  # read the next page now
RETRY: Final = "retry"  # read again after a short pause

#: Stored events are read from the store in pages of this many.
PAGE: Final = 500
#: Empty pages in a row before a seq that never became readable is skipped.
STALL_LIMIT: Final = 200

Page = list[tuple[int, "str | None"]]


@dataclass(frozen=True, slots=True)
class PageOutcome:
    step: str
    released: list[tuple[int, str]] = field(default_factory=list)
    skipped: tuple[int, int] | None = None  # (first, last) seq given up on


class RoomSequence:
    __slots__ = ("catching_up", "horizon", "limit", "pending", "seq", "stalls")

    def __init__(self, seq: int, limit: int = 1024) -> None:
        self.seq = seq
        self.limit = limit
        self.pending: dict[int, str | None] = {}
        self.catching_up = False
        self.horizon = seq
        self.stalls = 0

    # ---- live events -----------------------------------------------------------

    def offer(self, seq: int, text: str | None) -> int:
        """A live stored event: DELIVER (``seq`` advanced), DUPLICATE, HOLD or
        FILL_GAP (held; the caller starts a catch-up)."""
        last = self.seq
        if seq <= last:
            return DUPLICATE
        if not self.catching_up and seq == last + 1:
            self.seq = seq
            return DELIVER
        self._hold(seq, text)
        if self.catching_up:
            return HOLD
        self.catching_up = True
        return FILL_GAP

    def _hold(self, seq: int, text: str | None) -> None:
        if seq > self.horizon:
            self.horizon = seq
        pending = self.pending
        if len(pending) < self.limit or seq in pending:
            pending[seq] = text
        elif pending and seq < (highest := max(pending)):
            # Full: keep the lowest seqs, the ones the gap needs first.
            del pending[highest]
            pending[seq] = text

    def begin_catch_up(self) -> bool:
        """Something may be missing (the broker lost messages, a resync): True when
        a catch-up must start, False when one is already running."""
        if self.catching_up:
            return False
        self.catching_up = True
        self.stalls = 0
        return True

    def release(self) -> tuple[list[tuple[int, str]], bool]:
        """Held events that are now in order (to send), and whether the gap is
        closed (catching up has ended)."""
        out: list[tuple[int, str]] = []
        pending = self.pending
        for seq in sorted(pending):
            if seq <= self.seq:
                del pending[seq]
            elif seq == self.seq + 1:
                text = pending.pop(seq)
                self.seq = seq
                if text:
                    out.append((seq, text))
            else:
                break
        if pending or self.seq < self.horizon:
            return out, False
        self.catching_up = False
        self.stalls = 0
        return out, True

    # ---- store pages ---------------------------------------------------------------

    def fresh(self, page: Page) -> Iterator[tuple[int, str | None]]:
        """The events of a store page not yet delivered, in order. Confirm each with
        ``advance`` as it is handed to the outbox. An event also held live goes out
        as it was published (the bytes the room's other connections got: an AI
        completion published live leaves its text to the chunks already sent, its
        stored copy repeats it)."""
        pending = self.pending
        for seq, text in page:
            if seq > self.seq:
                yield seq, pending[seq] if seq in pending else text

    def advance(self, seq: int) -> None:
        if seq > self.seq:
            self.seq = seq

    def page_done(self, size: int) -> PageOutcome:
        """After a page of ``size`` events was read and its fresh events sent."""
        if size:
            self.stalls = 0
        if size >= PAGE:  # more may follow it in the store
            return PageOutcome(READ)
        released, closed = self.release()
        if closed:
            return PageOutcome(DONE, released)
        if size:
            return PageOutcome(READ, released)
        self.stalls += 1
        if self.stalls <= STALL_LIMIT:
            return PageOutcome(RETRY, released)
        first = self.seq + 1
        upto = (min(self.pending) if self.pending else self.horizon + 1) - 1
        self.seq = upto
        self.stalls = 0
        more, closed = self.release()
        return PageOutcome(DONE if closed else READ, released + more, (first, upto))

    def abort(self) -> None:
        """The catch-up failed: leave the held events; the next gap starts anew."""
        self.catching_up = False

    # ---- resuming --------------------------------------------------------------------

    def resume_after(self, lost_from: int | None) -> int:
        """The seq a client should ``sync`` after when the connection is cut: the last
        one that really left, given the first one an outbox overflow threw away."""
        if lost_from is None:
            return self.seq
        return min(self.seq, lost_from - 1)
