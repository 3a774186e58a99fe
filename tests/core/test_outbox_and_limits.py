"""The bounded outbox and the sliding-window rate limit, without sockets."""

from __future__ import annotations

import json

from chinwag.core.outbox import Kind, Outbox
from chinwag.core.ratelimit import SlidingWindow


def chunk(text: str) -> str:
    return json.dumps({"type": "chat", "data": {"content": text, "streaming": True}})


def test_full_outbox_drops_ephemeral_first_and_keeps_stored() -> None:
    box = Outbox(3)
    assert box.put("typing", Kind.EPHEMERAL)
    assert box.put("s1") and box.put("s2")
    assert not box.put("typing2", Kind.EPHEMERAL)  # full: new ephemeral is dropped
    assert box.put("s3")  # full: the queued ephemeral makes room for a stored one
    assert [box.pop(), box.pop(), box.pop()] == ["s1", "s2", "s3"]
    assert box.dropped == 2 and not box.overflowed


def test_stored_frames_never_dropped_overflow_instead() -> None:
    box = Outbox(2)
    box.put("a")
    box.put("b")
    assert not box.put("c")
    assert box.overflowed and box.pop() is None


def test_ai_chunks_merge_under_pressure() -> None:
    box = Outbox(2)
    box.put("stored")
    assert box.put_chunk(1, chunk("Hel"))
    assert box.put_chunk(1, chunk("lo"))  # full: merged into the queued chunk of stream 1
    assert box.pop() == "stored"
    merged = json.loads(box.pop() or "")
    assert merged["data"]["content"] == "Hello" and not box.overflowed


def test_sliding_window_counts_only_accepted_frames() -> None:
    now = [0.0]
    limit = SlidingWindow(2, 10.0, clock=lambda: now[0])
    assert limit.check() == 0
    now[0] = 4.0
    assert limit.check() == 0
    now[0] = 5.0
    assert limit.check() == 5  # first stamp leaves the window at t=10
    now[0] = 9.0
    assert limit.check() == 1  # rejected frames did not push the window out
    now[0] = 10.0
    assert limit.check() == 0
