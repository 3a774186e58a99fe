"""Command line: ``chinwag serve``, ``chinwag create-admin`` and ``chinwag chat``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import sys
from collections.abc import Iterator

from chinwag.settings import Settings, SettingsError, load_settings

SETTINGS_HELP = (
    "Settings (DATABASE_URL, BROKER_URL, JWT_SECRET, limits, AI …) come from "
    "environment variables or a .env file in the working directory; the "
    "README's settings table lists each with its default."
)


def main(argv: list[str] | None = None) -> int:
    helpful = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter, "epilog": SETTINGS_HELP}
    parser = argparse.ArgumentParser(prog="chinwag", description="chinwag chat server", **helpful)  # type: ignore[arg-type]
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the server", **helpful)  # type: ignore[arg-type]
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (needs BROKER_URL=redis://…)",
    )
    admin = sub.add_parser(
        "create-admin",
        help="create an admin user or reset its password",
        **helpful,  # type: ignore[arg-type]
    )
    admin.add_argument("username")
    admin.add_argument(
        "--password", help="read from the terminal (or CHINWAG_ADMIN_PASSWORD) when omitted"
    )
    from chinwag_client import terminal

    chat = sub.add_parser("chat", help="interactive terminal chat with a chinwag server")
    terminal.add_arguments(chat)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "chat":
        return terminal.run(args)
    try:
        settings = load_settings()
        if args.command == "serve":
            return _serve(settings, args.host, args.port, args.workers)
        return _create_admin(settings, args.username, args.password)
    except SettingsError as exc:
        print(f"chinwag: {exc}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def _shared_metrics() -> Iterator[None]:
    """Workers keep their Prometheus values in files of one directory that every
    worker's /metrics merges (prometheus-client multiprocess mode): the operator's
    ``PROMETHEUS_MULTIPROC_DIR``, or a fresh one removed at exit. Set before the
    workers start, so each inherits it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="chinwag-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        yield


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn

    from chinwag.server.logs import configure_logging
    from chinwag.server.transport import ChinwagServer, uvicorn_options

    configure_logging(settings.log_level, settings.log_format, settings.debug)
    if workers > 1:
        if not settings.uses_redis:
            raise SettingsError(
                "invalid setting BROKER_URL: --workers needs redis://… so the "
                "processes can share rooms"
            )
        from chinwag.server.workers import run_workers

        with _shared_metrics():
            return run_workers(workers, host, port)
    from chinwag.server.app import create_app

    config = uvicorn.Config(create_app(settings), **uvicorn_options(settings, host, port))
    # uvicorn re-raises the signal that stopped it, to the handler that was there
    # before: SIGTERM's default would end the process with -15 and SIGINT's would
    # print a KeyboardInterrupt, after a shutdown that was clean. Exit 0 instead.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    ChinwagServer(config).run()
    return 0


def _create_admin(settings: Settings, username: str, password: str | None) -> int:
    from chinwag.server.auth import Passwords
    from chinwag.store.sql import SqlStore

    password = (
        password
        or os.environ.get("CHINWAG_ADMIN_PASSWORD")
        or getpass.getpass(f"password for {username}: ")
    )
    if len(password) < 8:
        print("chinwag: the password needs at least 8 characters", file=sys.stderr)
        return 2

    async def run() -> None:
        store = SqlStore(settings.effective_database_url)
        passwords = Passwords(1)
        try:
            await store.start()
            await store.users.upsert_admin(username, await passwords.hash(password))
        finally:
            await store.close()
            passwords.close()

    asyncio.run(run())
    print(f"admin '{username}' is ready")
    return 0
