"""The SDK's pure parts, no event loop: seq ordering per room and reconnect delays."""

from __future__ import annotations

from chinwag_client.backoff import Backoff
from chinwag_client.models import Event
from chinwag_client.ordering import RoomOrder


def ev(seq: int, room: str = "r") -> Event:
    return Event("chat", {"content": str(seq)}, room, seq)


def seqs(events: list[Event]) -> list[int | None]:
    return [e.seq for e in events]


def test_duplicates_are_dropped_and_early_events_wait_for_the_missing_ones() -> None:
    order = RoomOrder()
    assert seqs(order.offer(ev(5))) == [5]  # a room's first event sets its start
    assert seqs(order.offer(ev(5))) == []
    assert seqs(order.offer(ev(8))) == [] and order.has_gap("r")
    assert seqs(order.offer(ev(7))) == []
    assert seqs(order.offer(ev(6))) == [6, 7, 8] and not order.has_gap("r")
    assert seqs(order.offer(ev(7))) == []


def test_a_sync_answer_releases_events_after_seqs_never_meant_for_this_user() -> None:
    order = RoomOrder()
    order.offer(ev(1))
    order.offer(ev(4))  # 2 and 3: the user's own leave and join, which it never gets
    assert seqs(order.synced("r", 4)) == [4]
    assert order.last["r"] == 4 and not order.has_gap("r")
    assert seqs(order.offer(ev(6))) == []
    assert seqs(order.synced("r", 4)) == []  # a replay that ended before 5: 6 waits
    assert seqs(order.offer(ev(5))) == [5, 6]
    order.offer(ev(8))
    assert seqs(order.synced("r", 7)) == [8]  # the replay reached 7 and 7 never came


def test_rooms_are_ordered_independently() -> None:
    order = RoomOrder()
    order.offer(ev(1, "a"))
    order.offer(ev(10, "b"))
    assert seqs(order.offer(ev(3, "a"))) == []
    assert seqs(order.offer(ev(11, "b"))) == [11]
    order.forget("a")
    assert seqs(order.offer(ev(3, "a"))) == [3]


def mention(seq: int, room: str = "r") -> Event:
    return Event("mention", {"message_id": 100 + seq, "seq": seq, "by": "alice"}, room)


def test_a_mention_waits_for_the_chat_it_names() -> None:
    order = RoomOrder()
    order.offer(ev(1))
    assert order.offer_after(mention(1), 1) == [mention(1)]  # its chat came already
    assert order.offer_after(mention(3), 3) == []  # overtook chat 3
    assert seqs(order.offer(ev(3))) == [] and order.has_gap("r")
    got = order.offer(ev(2))
    assert [(e.type, e.data.get("seq", e.seq)) for e in got] == [
        ("chat", 2),
        ("chat", 3),
        ("mention", 3),
    ]
    assert order.offer_after(mention(5), 5) == []
    assert order.synced("r", 5) == [mention(5)]  # chat 5 was never meant for this user
    order.offer_after(mention(9), 9)
    order.forget("r")
    assert order.offer(ev(9)) == [ev(9)]  # a forgotten room's waiting mentions are gone


def test_backoff_has_full_jitter_within_an_exponential_cap() -> None:
    backoff = Backoff(base=1, cap=8)
    for attempt, bound in [(0, 1), (1, 2), (2, 4), (3, 8), (10, 8)]:
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0 <= d < bound or d == bound for d in delays)
        assert min(delays) < bound / 4  # spread down to zero, not clustered at the cap


def test_close_codes_choose_the_next_attempt() -> None:
    backoff = Backoff(busy_attempts=3)
    assert backoff.next_attempt(2, 1013, was_open=True) == 5  # too many connections
    assert backoff.next_attempt(4, 4008, was_open=True) == 0  # slow reader: resume now
    assert backoff.next_attempt(4, 1006, was_open=True) == 0
    assert backoff.next_attempt(4, None, was_open=False) == 5  # could not connect
