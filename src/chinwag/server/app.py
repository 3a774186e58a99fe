"""create_app: the one place that picks implementations and wires chinwag together."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Receive, Scope, Send

from chinwag.broker.base import Broker
from chinwag.broker.memory import MemoryBroker
from chinwag.core import metrics
from chinwag.core.service import ChatService
from chinwag.core.uploads import UploadLimits, UploadManager
from chinwag.core.wiring import Limits
from chinwag.files.s3 import S3Location, S3Storage, make_client
from chinwag.files.scanner import ClamdScanner, DisabledScanner, Scanner
from chinwag.files.storage import LocalStorage
from chinwag.protocol.errors import ChatError, RateLimited
from chinwag.server.ai_setup import ai_setup, create_catalog
from chinwag.server.auth import Passwords, Tokens, load_or_create_secret
from chinwag.server.deps import Runtime
from chinwag.server.routes import admin, ai, auth, content, directory, ops, rooms, search, web
from chinwag.server.throttles import AddressLimit, HttpRateLimit, LimitStore, LoginThrottle
from chinwag.server.ws import websocket_endpoint
from chinwag.settings import Settings, SettingsError
from chinwag.store.sql import SqlStore

log = logging.getLogger(__name__)


def create_broker(settings: Settings, node_id: str) -> Broker:
    if settings.uses_redis_cluster:
        from chinwag.broker.redis_cluster import RedisClusterBroker

        return RedisClusterBroker(
            settings.broker_url, node_id=node_id, key_prefix=settings.redis_key_prefix
        )
    if settings.uses_redis:
        from chinwag.broker.redis import RedisBroker

        return RedisBroker(
            settings.broker_url, node_id=node_id, key_prefix=settings.redis_key_prefix
        )
    return MemoryBroker()


def create_scanner(settings: Settings) -> Scanner:
    if not settings.virus_scan_enabled:
        return DisabledScanner()
    if not (settings.clamd_socket or settings.clamd_host):
        raise SettingsError("invalid setting VIRUS_SCAN_ENABLED: needs CLAMD_SOCKET or CLAMD_HOST")
    return ClamdScanner(
        settings.clamd_socket,
        settings.clamd_host,
        settings.clamd_port,
        settings.clamd_timeout,
        max_concurrent=settings.clamd_max_concurrent,
    )


def create_storage(settings: Settings) -> LocalStorage | S3Storage:
    if settings.file_storage_url is None:
        return LocalStorage(settings.upload_dir, settings.temp_dir)
    client = make_client(
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.s3_access_key_id,
        settings.s3_secret_access_key,
    )
    return S3Storage(client, S3Location.parse(settings.file_storage_url), settings.temp_dir)


def create_app(settings: Settings) -> FastAPI:
    node_id = uuid.uuid4().hex[:12]
    store = SqlStore(settings.effective_database_url)
    broker = create_broker(settings, node_id)
    limits = Limits(
        max_connections=settings.websocket_max_connections,
        max_connections_per_user=settings.websocket_max_connections_per_user,
        outbox_size=settings.websocket_outbox_size,
        rate_limit_requests=settings.ws_rate_limit_requests,
        rate_limit_window=settings.ws_rate_limit_window,
        presence_ttl=settings.presence_ttl,
        typing_timeout=settings.typing_timeout,
        cleanup_interval=settings.websocket_cleanup_interval,
        heartbeat_interval=settings.websocket_heartbeat_interval,
        single_process=not settings.uses_redis,
        max_rooms_per_user=settings.max_rooms_per_user,
    )
    catalog = create_catalog(settings)
    storage = create_storage(settings)
    scanner = create_scanner(settings)
    uploads = UploadManager(
        store.uploads,
        storage,
        scanner,
        UploadLimits(
            max_file_size=settings.max_file_size,
            max_chunk_size=settings.max_chunk_size,
            upload_timeout=settings.upload_timeout,
            max_uploads_per_user=settings.max_uploads_per_user,
            max_temp_bytes_per_user=settings.max_temp_bytes_per_user,
            finalize_lease=settings.upload_finalize_lease,
        ),
    )
    service = ChatService(
        store,
        broker,
        broker,
        limits,
        node_id,
        ai=ai_setup(settings, catalog, node_id),
        uploads=uploads,
    )
    tokens = Tokens(
        load_or_create_secret(settings.jwt_secret, settings.data_dir),
        settings.access_token_expire_seconds,
        settings.ws_token_expire_seconds,
    )
    registry = CollectorRegistry()
    limit_store = LimitStore.for_settings(settings)
    passwords = Passwords(settings.password_hash_workers)
    runtime = Runtime(
        settings,
        store,
        service,
        tokens,
        passwords,
        LoginThrottle(limit_store, settings.login_max_failures, settings.login_lockout_seconds),
        AddressLimit(
            limit_store,
            settings.register_rate_limit_requests,
            settings.register_rate_limit_window,
            "registration",
        ),
        storage,
        scanner,
        registry,
    )
    registry.register(_StatsCollector(service))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # serve --workers N: every worker's
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for metric in metrics.ALL:
            registry.register(metric)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.start()
        if isinstance(storage, S3Storage):
            await storage.start()
        else:
            await storage.sweep_temp(2 * settings.upload_timeout)  # left by a crash
        if settings.admin_username and settings.admin_password:
            await store.users.upsert_admin(
                settings.admin_username, await passwords.hash(settings.admin_password)
            )
            log.info("admin user '%s' is ready", settings.admin_username)
        await service.start()
        log.info(
            "chinwag ready (node %s, database %s, broker %s, AI %s/%s)",
            node_id,
            "sqlite" if store.db.is_sqlite else "postgresql",
            broker.__class__.__name__,
            "+".join(catalog.providers),
            catalog.default_model,
        )
        try:
            yield
        finally:
            await runtime.close_sockets()
            await service.stop()
            await catalog.aclose()
            await broker.close()
            await store.close()
            await limit_store.close()
            passwords.close()

    app = ChinwagApp(
        title="chinwag",
        version="0.1.0",
        lifespan=lifespan,
        description="Real-time chat over WebSockets, with rooms and AI replies.",
        docs_url=None,
        redoc_url=None,
    )  # served offline by routes.web
    app.state.runtime = runtime
    app.add_middleware(
        HttpRateLimit,
        limit=AddressLimit(
            limit_store, settings.http_rate_limit_requests, settings.http_rate_limit_window, "HTTP"
        ),
    )
    app.include_router(auth.router)
    app.include_router(directory.router)  # before rooms: GET /ws/rooms is not /ws/rooms/{id}
    app.include_router(rooms.router)
    app.include_router(admin.router)
    app.include_router(content.router)
    app.include_router(ops.router)
    app.include_router(ai.router)
    app.include_router(search.router)
    web.mount(app)

    @app.exception_handler(ChatError)
    async def chat_error(_request: Request, exc: ChatError) -> JSONResponse:
        headers: dict[str, str] = {}
        if exc.http_status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimited) and "retry_after" in exc.extra:
            headers["Retry-After"] = str(exc.extra["retry_after"])
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code.value}
        if exc.details is not None:
            body["details"] = exc.details
        return JSONResponse(body, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "error": e["msg"]}
            for e in exc.errors()
        ]
        first = details[0] if details else {"field": "body", "error": "invalid"}
        return JSONResponse(
            {
                "detail": f"invalid field '{first['field']}': {first['error']}",
                "code": "INVALID_MESSAGE",
                "details": details,
            },
            status_code=422,
        )

    return app


WS_PATH = "/api/v1/ws/ws"


def route_path(scope: Scope) -> str:
    """The path below the app's mount point: under ``Mount("/chat", app)`` a request
    for ``/chat/api/v1/ws/ws`` has ``root_path`` ``/chat`` and is ``/api/v1/ws/ws`` here."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


class ChinwagApp(FastAPI):
    """FastAPI for HTTP; the WebSocket endpoint is called directly. A connection
    lives for hours, and every layer of the routing and middleware stack it would
    otherwise sit in costs memory per idle socket (measured: ~8 KB)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and route_path(scope) == WS_PATH:
            scope["app"] = self
            await websocket_endpoint(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


class _StatsCollector:
    """Prometheus view of this process's counters, read at scrape time."""

    def __init__(self, service: ChatService) -> None:
        self.service = service

    def collect(self) -> Any:
        s = self.service.stats
        yield GaugeMetricFamily(
            "chinwag_active_connections",
            "Open WebSocket connections",
            value=len(self.service.hub.sessions),
        )
        for name, value, doc in [
            ("connections", s.total_connections, "WebSocket connections accepted"),
            ("messages_received", s.messages_received, "Client frames handled"),
            ("messages_sent", self.service.upkeep.frames_sent(), "Frames written to connections"),
            ("rejected_frames", s.rejected_frames, "Frames refused by the rate limit"),
            ("ai_requests", s.ai_requests, "AI replies started"),
            ("ai_tokens", s.ai_tokens_used, "AI tokens used"),
            ("uploads_completed", s.uploads_completed, "Uploads published"),
        ]:
            yield CounterMetricFamily(f"chinwag_{name}", doc, value=value)
        yield CounterMetricFamily("chinwag_ai_cost_usd", "AI cost in USD", value=s.ai_cost_usd)


def app_from_env() -> FastAPI:
    """App factory for worker processes (``chinwag serve --workers N``)."""
    from chinwag.server.logs import configure_logging
    from chinwag.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, settings.debug)
    return create_app(settings)
