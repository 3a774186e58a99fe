"""Counters of one process. The stats endpoint sums the snapshots of every live node."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class NodeStats:
    started_at: float = field(default_factory=time.time)
    active_connections: int = 0
    total_connections: int = 0
    messages_received: int = 0
    messages_sent: int = 0
    rejected_frames: int = 0
    ai_requests: int = 0
    ai_tokens_used: int = 0
    ai_cost_usd: float = 0.0
    uploads_in_progress: int = 0
    uploads_completed: int = 0

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


def combine(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum counters over nodes; uptime is the oldest node's."""
    total: dict[str, Any] = {}
    for snap in snapshots:
        for key, value in snap.items():
            if key == "started_at":
                total[key] = min(total.get(key, value), value)
            elif isinstance(value, int | float):
                total[key] = total.get(key, 0) + value
    return total
