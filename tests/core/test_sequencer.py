"""The delivery sequencer as a plain state machine: every decision it makes about a
live event, a store page or a resume, with no event loop, broker or store."""

from __future__ import annotations

from chinwag.core.sequencer import (
    DELIVER,
    DONE,
    DUPLICATE,
    FILL_GAP,
    HOLD,
    PAGE,
    READ,
    RETRY,
    STALL_LIMIT,
    RoomSequence,
)


def gap_at(seq: int, *held: int, limit: int = 1024) -> RoomSequence:
    """A sequence that delivered up to ``seq`` and then saw ``held`` arrive."""
    s = RoomSequence(seq, limit)
    for h in held:
        s.offer(h, f"e{h}")
    return s


def page(*seqs: int) -> list[tuple[int, str | None]]:
    return [(q, f"e{q}") for q in seqs]


def deliver_page(s: RoomSequence, events: list[tuple[int, str | None]]) -> list[int]:
    sent = []
    for seq, _text in s.fresh(events):
        s.advance(seq)
        sent.append(seq)
    return sent


# ---- live events ---------------------------------------------------------------


def test_the_next_seq_is_delivered_and_advances() -> None:
    s = RoomSequence(4)
    assert s.offer(5, "e5") == DELIVER
    assert s.seq == 5 and not s.catching_up


def test_a_seq_at_or_below_the_last_is_a_duplicate() -> None:
    s = RoomSequence(4)
    assert s.offer(4, "e4") == DUPLICATE
    assert s.offer(1, "e1") == DUPLICATE
    assert s.seq == 4 and not s.pending


def test_a_seq_beyond_the_next_is_held_and_starts_a_catch_up() -> None:
    s = RoomSequence(4)
    assert s.offer(7, "e7") == FILL_GAP
    assert s.catching_up and s.pending == {7: "e7"} and s.seq == 4


def test_events_during_a_catch_up_are_held_even_when_next() -> None:
    s = gap_at(4, 7)
    assert s.offer(5, "e5") == HOLD
    assert s.offer(8, None) == HOLD
    assert s.seq == 4 and set(s.pending) == {5, 7, 8}


def test_held_events_are_bounded_but_the_horizon_still_moves() -> None:
    s = gap_at(0, 2, 3, limit=2)
    assert s.offer(9, "e9") == HOLD
    assert set(s.pending) == {2, 3} and s.horizon == 9
    s.offer(3, "again")  # already held: updated even at the bound
    assert s.pending[3] == "again"


def test_reordered_arrival_closes_the_gap_without_the_store() -> None:
    s = gap_at(1, 3, 4)
    assert s.offer(2, "e2") == HOLD
    released, closed = s.release()
    assert released == [(2, "e2"), (3, "e3"), (4, "e4")]
    assert closed and s.seq == 4 and not s.catching_up and not s.pending


def test_release_stops_at_a_remaining_gap() -> None:
    s = gap_at(1, 3, 5)
    s.offer(2, "e2")
    released, closed = s.release()
    assert released == [(2, "e2"), (3, "e3")] and not closed
    assert s.seq == 3 and s.pending == {5: "e5"} and s.catching_up


def test_release_drops_held_events_a_store_page_already_sent() -> None:
    s = gap_at(1, 3, 4)
    deliver_page(s, page(2, 3))
    released, closed = s.release()
    assert released == [(4, "e4")] and closed


def test_a_hidden_event_advances_without_a_frame() -> None:
    s = RoomSequence(1)
    s.offer(3, None)
    s.offer(2, "e2")
    released, closed = s.release()
    assert released == [(2, "e2")] and s.seq == 3 and closed


def test_at_the_bound_a_lower_seq_replaces_the_highest_held() -> None:
    s = gap_at(0, 2, 3, limit=2)
    s.offer(1, "e1")
    assert s.pending == {1: "e1", 2: "e2"} and s.horizon == 3


def test_release_is_not_done_below_the_horizon_of_events_not_held() -> None:
    s = gap_at(0, 2, 3, limit=2)
    s.offer(1, "e1")  # 3 is no longer held
    released, closed = s.release()
    assert released == [(1, "e1"), (2, "e2")] and not closed and s.seq == 2


# ---- resync ----------------------------------------------------------------------


def test_begin_catch_up_only_when_none_is_running() -> None:
    s = RoomSequence(3)
    assert s.begin_catch_up() is True
    assert s.begin_catch_up() is False
    assert s.catching_up


def test_abort_ends_the_catch_up_and_keeps_held_events() -> None:
    s = gap_at(1, 3)
    s.abort()
    assert not s.catching_up and s.pending == {3: "e3"}
    assert s.offer(4, "e4") == FILL_GAP  # the next gap starts anew


# ---- store pages -------------------------------------------------------------------


def test_fresh_skips_what_was_delivered_and_advance_only_moves_forward() -> None:
    s = RoomSequence(3)
    assert deliver_page(s, page(2, 3, 4, 5)) == [4, 5]
    s.advance(1)
    assert s.seq == 5


def test_an_event_held_live_is_sent_as_published_not_as_the_page_has_it() -> None:
    s = gap_at(1, 3)  # 2 missing, 3 held as it came live
    sent = list(s.fresh([(2, "stored 2"), (3, "stored 3")]))
    assert sent == [(2, "stored 2"), (3, "e3")]


def test_a_full_page_means_read_again() -> None:
    s = gap_at(0, PAGE + 5)
    deliver_page(s, page(*range(1, PAGE + 1)))
    outcome = s.page_done(PAGE)
    assert outcome.step == READ and outcome.released == [] and s.catching_up


def test_a_short_page_that_closes_the_gap_is_done_and_releases_held() -> None:
    s = gap_at(1, 3, 4)
    s.offer(5, "e5")
    deliver_page(s, page(2, 3))
    outcome = s.page_done(2)
    assert outcome.step == DONE and outcome.released == [(4, "e4"), (5, "e5")]
    assert s.seq == 5 and not s.catching_up


def test_catch_up_racing_live_events_delivers_each_once_in_order() -> None:
    s = gap_at(10, 12)  # 11 missing
    sent = deliver_page(s, page(11, 12))
    s.offer(12, "e12")  # the broker's copy of what the page sent
    s.offer(13, "e13")  # live while the page was being sent
    outcome = s.page_done(2)
    assert sent == [11, 12] and outcome.released == [(13, "e13")]
    assert outcome.step == DONE and s.seq == 13


def test_a_short_page_with_the_gap_still_open_reads_again_at_once() -> None:
    s = gap_at(1, 5)
    deliver_page(s, page(2))
    assert s.page_done(1).step == READ


def test_an_empty_page_retries_until_the_stall_limit_then_skips() -> None:
    s = gap_at(1, 4)
    for _ in range(STALL_LIMIT):
        assert s.page_done(0).step == RETRY
    outcome = s.page_done(0)
    assert outcome.skipped == (2, 3)
    assert outcome.step == DONE and outcome.released == [(4, "e4")] and s.seq == 4


def test_progress_resets_the_stall_count() -> None:
    s = gap_at(1, 9)
    for _ in range(STALL_LIMIT):
        s.page_done(0)
    deliver_page(s, page(2))
    assert s.page_done(1).step == READ
    assert s.page_done(0).step == RETRY


def test_skipping_with_nothing_held_jumps_to_the_horizon() -> None:
    s = gap_at(0, 3, 4, limit=0)  # nothing kept: 3 and 4 known only by seq
    for _ in range(STALL_LIMIT):
        s.page_done(0)
    outcome = s.page_done(0)
    assert outcome.skipped == (1, 4) and outcome.step == DONE and s.seq == 4


def test_skipping_to_an_event_beyond_another_gap_reads_on() -> None:
    s = gap_at(1, 4, 6)
    for _ in range(STALL_LIMIT):
        s.page_done(0)
    outcome = s.page_done(0)
    assert outcome.skipped == (2, 3) and outcome.released == [(4, "e4")]
    assert outcome.step == READ and s.pending == {6: "e6"}


# ---- resuming ------------------------------------------------------------------------


def test_resume_after_is_the_last_seq_that_really_left() -> None:
    s = RoomSequence(9)
    assert s.resume_after(None) == 9
    assert s.resume_after(6) == 5
    assert s.resume_after(20) == 9
