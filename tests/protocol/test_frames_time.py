"""Server timestamps: ISO 8601 UTC, milliseconds, ``Z``, the time of the call."""

from __future__ import annotations

import re
import time
from datetime import datetime

from chinwag.protocol.frames import utc_now


def test_utc_now_is_iso_utc_with_milliseconds_at_the_time_of_the_call() -> None:
    for _ in range(2000):  # long enough to cross whole seconds now and then
        before = int(time.time() * 1000)
        stamp = utc_now()
        after = int(time.time() * 1000)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
        at = int(datetime.fromisoformat(stamp).timestamp() * 1000 + 0.5)
        assert before <= at <= after
