"""Sliding-window rate limit: at most ``limit`` accepted frames in any ``window`` seconds.

Rejected frames do not count, so ``retry_after`` is honest: after waiting that many
seconds the oldest accepted frame has left the window and the next one passes."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._stamps: deque[float] | None = None  # made on first use: idle sockets are many

    def check(self) -> int:
        """0 if the frame may pass (and it is counted), else whole seconds to wait (≥ 1)."""
        now = self._clock()
        horizon = now - self.window
        stamps = self._stamps
        if stamps is None:
            stamps = self._stamps = deque()
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        if len(stamps) < self.limit:
            stamps.append(now)
            return 0
        return max(1, math.ceil(stamps[0] + self.window - now))
