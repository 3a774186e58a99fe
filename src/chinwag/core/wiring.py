"""What a ChatService is built from, besides its store and broker."""

from __future__ import annotations

from dataclasses import dataclass

from chinwag.ai.catalog import Catalog
from chinwag.core.ai_admission import AdmissionConfig
from chinwag.core.assistant import AssistantConfig


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int
    max_connections_per_user: int
    outbox_size: int
    rate_limit_requests: int
    rate_limit_window: float
    presence_ttl: float
    typing_timeout: float
    cleanup_interval: float
    heartbeat_interval: float
    single_process: bool = False  # the broker is in-process: no other node exists
    max_rooms_per_user: int | None = None  # rooms a non-admin may own at once


@dataclass(frozen=True, slots=True)
class AISetup:
    """What the service's AI runner is built from."""

    catalog: Catalog
    admission: AdmissionConfig
    config: AssistantConfig
