"""Server timestamps: ISO 8601 UTC, milliseconds, ``Z``, the time of the call."""

from __future__ import annotations

import re
import time
from datetime import datetime

from chinwag.protocol.frames import utc_now


def whole_ms(t: float) -> int:
    # Truncated the way a stamp is (whole seconds first): ``int(t * 1000)`` can land
    # a millisecond lower at today's magnitudes, from the float product alone.
    seconds = int(t)
    return seconds * 1000 + int((t - seconds) * 1000)


def test_utc_now_is_iso_utc_with_milliseconds_at_the_time_of_the_call() -> None:
    for _ in range(2000):  # long enough to cross whole seconds now and then
        before = whole_ms(time.time())
        stamp = utc_now()
        after = whole_ms(time.time())
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
        at = int(datetime.fromisoformat(stamp).timestamp() * 1000 + 0.5)
        assert before <= at <= after
