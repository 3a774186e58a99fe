"""Health, stats and metrics."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chinwag.broker.base import BrokerUnavailable
from chinwag.core.stats import combine
from chinwag.protocol.errors import NotFound
from chinwag.server.deps import AdminDep, RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(rt: RuntimeDep) -> JSONResponse:
    db_ok = await rt.store.healthy()
    broker_ok = await rt.service.pubsub.healthy()
    body: dict[str, Any] = {
        "status": "ok",
        "websocket": {"status": "ok", "active_connections": len(rt.service.hub.sessions)},
        "database": "ok" if db_ok else "down",
        "broker": "ok" if broker_ok else "down",
    }
    healthy = db_ok and broker_ok
    if rt.settings.virus_scan_enabled:
        scan_ok = await rt.scanner.ping()
        body["scanner"] = "ok" if scan_ok else "down"
        healthy = healthy and scan_ok
    if not healthy:
        body["status"] = "degraded"
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/api/v1/ws/stats")
async def stats(rt: RuntimeDep, _admin: AdminDep) -> dict[str, Any]:
    return await collect_stats(rt)


async def collect_stats(rt: RuntimeDep) -> dict[str, Any]:
    service = rt.service
    await service.upkeep.publish_stats()
    try:
        nodes = await service.state.set_members("nodes")
        raw = await service.state.get_many([f"stats:{n}" for n in nodes])
    except BrokerUnavailable:
        raw = []  # only this node's numbers while the broker is away
    snaps = [orjson.loads(r) for r in raw if r is not None] or [service.stats.snapshot()]
    total = combine(snaps)
    online = await service.presence.online_users()
    return {
        "active_connections": total.get("active_connections", 0),
        "active_users": len(online),
        "total_connections": total.get("total_connections", 0),
        "rooms": await rt.store.rooms.count_by_type(),
        "messages_received": total.get("messages_received", 0),
        "messages_sent": total.get("messages_sent", 0),
        "messages_stored": await rt.store.events.count(),
        "queued_messages": await _queued(rt, set(online)),
        "uptime_seconds": round(time.time() - total.get("started_at", time.time()), 1),
        "nodes": len(snaps),
        "ai": {
            "requests": total.get("ai_requests", 0),
            "tokens_used": total.get("ai_tokens_used", 0),
            "cost_usd": round(total.get("ai_cost_usd", 0.0), 8),
        },
        "uploads": {
            "in_progress": total.get("uploads_in_progress", 0),
            "completed": total.get("uploads_completed", 0),
        },
    }


async def _queued(rt: RuntimeDep, online: set[str]) -> int:
    """Stored events waiting for members who are offline now."""
    pending = await rt.store.rooms.pending_counts()
    return sum(n for user, n in pending.items() if user not in online)


@router.get("/metrics")
async def metrics(rt: RuntimeDep) -> Response:
    if not rt.settings.metrics_enabled:
        raise NotFound("metrics are disabled (METRICS_ENABLED=false)")
    return Response(generate_latest(rt.registry), media_type=CONTENT_TYPE_LATEST)
