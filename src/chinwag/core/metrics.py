"""Prometheus metrics with AI dimensions, right with several worker processes.

Under ``chinwag serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before the workers start, so prometheus-client keeps these values in files that
``/metrics`` merges (``MultiProcessCollector``): every scrape reads the whole server,
whichever worker answers it."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LABELS = ("provider", "model", "outcome")
AI_REQUESTS = Counter("chinwag_ai_replies", "AI replies finished", LABELS, registry=None)
AI_TOKENS_IN = Counter("chinwag_ai_prompt_tokens", "AI prompt tokens", LABELS, registry=None)
AI_TOKENS_OUT = Counter(
    "chinwag_ai_completion_tokens", "AI completion tokens", LABELS, registry=None
)
AI_COST = Counter("chinwag_ai_spent_usd", "AI cost in USD", LABELS, registry=None)
AI_FIRST_TOKEN = Histogram(
    "chinwag_ai_time_to_first_token_seconds",
    "From the start of a reply to its first chunk",
    ("provider", "model"),
    registry=None,
)
AI_GENERATION = Histogram(
    "chinwag_ai_generation_seconds", "Whole reply time", LABELS, registry=None
)
AI_FALLBACKS = Counter(
    "chinwag_ai_fallbacks",
    "Replies answered by a fallback model",
    ("provider", "model"),
    registry=None,
)
AI_BUDGET_REFUSALS = Counter(
    "chinwag_ai_budget_refusals", "AI requests refused by a budget", registry=None
)
FANOUT = Histogram(
    "chinwag_fanout_seconds",
    "Handing one room event from the broker to every local recipient's outbox",
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
    registry=None,
)
CONNECTIONS = Gauge(
    "chinwag_open_connections",
    "Open WebSocket connections",
    multiprocess_mode="livesum",
    registry=None,
)

ALL = (
    AI_REQUESTS,
    AI_TOKENS_IN,
    AI_TOKENS_OUT,
    AI_COST,
    AI_FIRST_TOKEN,
    AI_GENERATION,
    AI_FALLBACKS,
    AI_BUDGET_REFUSALS,
    FANOUT,
    CONNECTIONS,
)
