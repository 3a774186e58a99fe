"""Command line: ``chinwag serve`` and ``chinwag create-admin``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import sys
from typing import Any

from chinwag.settings import Settings, SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chinwag", description="chinwag chat server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="processes sharing the port (needs BROKER_URL=redis://…)")
    admin = sub.add_parser("create-admin", help="create an admin user or reset its password")
    admin.add_argument("username")
    admin.add_argument("--password", help="read from the terminal when omitted")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "serve":
            return _serve(settings, args.host, args.port, args.workers)
        return _create_admin(settings, args.username, args.password)
    except SettingsError as exc:
        print(f"chinwag: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn

    from chinwag.server.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, settings.debug)
    if workers > 1:
        if not settings.uses_redis:
            raise SettingsError("invalid setting BROKER_URL: --workers needs redis://… so the "
                                "processes can share rooms")
        from chinwag.server.workers import run_workers

        # Each worker is a fresh interpreter: it reads the settings from the
        # environment it inherited (app_from_env).
        return run_workers(uvicorn.Config("chinwag.server.app:app_from_env", factory=True,
                                          workers=workers,
                                          **_uvicorn_options(settings, host, port)))
    from chinwag.server.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings),
                                           **_uvicorn_options(settings, host, port)))
    # uvicorn re-raises the signal that stopped it, to the handler that was there
    # before: SIGTERM's default would end the process with -15 and SIGINT's would
    # print a KeyboardInterrupt, after a shutdown that was clean. Exit 0 instead.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run()
    return 0


def _uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    from chinwag.server.transport import DirectWebSocketProtocol, protocol_with_deadline

    return dict(
        host=host, port=port, http=protocol_with_deadline(settings.websocket_handshake_timeout),
        ws=DirectWebSocketProtocol,
        ws_ping_interval=settings.websocket_heartbeat_interval,
        ws_ping_timeout=settings.websocket_heartbeat_interval,
        ws_max_size=settings.ws_max_message_size, ws_per_message_deflate=False,
        log_config=None, lifespan="on",
        # Connections close within seconds (1012); the AI replies get DRAIN_TIMEOUT.
        timeout_graceful_shutdown=min(10.0, settings.drain_timeout),
    )


def _create_admin(settings: Settings, username: str, password: str | None) -> int:
    from chinwag.server.auth import hash_password
    from chinwag.store.sql import SqlStore

    password = password or os.environ.get("CHINWAG_ADMIN_PASSWORD") or getpass.getpass(
        f"password for {username}: ")
    if len(password) < 8:
        print("chinwag: the password needs at least 8 characters", file=sys.stderr)
        return 2

    async def run() -> None:
        store = SqlStore(settings.effective_database_url)
        try:
            await store.start()
            await store.users.upsert_admin(username, await hash_password(password))
        finally:
            await store.close()

    asyncio.run(run())
    print(f"admin '{username}' is ready")
    return 0
