"""Reconnect delays: exponential backoff with full jitter, and what each close code
means for the next attempt (docs/protocol.md §7)."""

from __future__ import annotations

import random
from dataclasses import dataclass

AUTH_FAILED = 4401  # sign in again, then reconnect
SLOW_CONSUMER = 4008  # reconnect at once and resume with sync
TRY_AGAIN_LATER = 1013  # too many connections: wait longer
GOING_AWAY = (1001, 1012)  # server stopping or restarting: another node may answer now


@dataclass(frozen=True)
class Backoff:
    """Attempt ``n`` (0-based) waits a random time in ``[0, min(cap, base * 2**n))``
    ("full jitter": many clients dropped at once do not come back at once)."""

    base: float = 0.5
    cap: float = 30.0
    busy_attempts: int = 3  # 1013 counts as this many failed attempts

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2 ** min(attempt, 30)))

    def next_attempt(self, attempt: int, close_code: int | None, was_open: bool) -> int:
        """The attempt number to wait for after a connection ended with
        ``close_code`` (``None``: it could not be opened)."""
        if close_code == TRY_AGAIN_LATER:
            return attempt + self.busy_attempts
        if was_open:
            return 0  # it worked: the next drop starts the series again
        return attempt + 1
