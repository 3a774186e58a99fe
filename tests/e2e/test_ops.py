"""Health, stats, metrics and logs."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.e2e.rooms_helpers import joined
from tests.support import PASSWORD, Namer, Server, StartServer, postgres_database, require_service


async def test_health_reports_each_part(server: Server) -> None:
    r = await server.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok"
    assert body["websocket"]["status"] == "ok"
    assert isinstance(body["websocket"]["active_connections"], int)


async def test_health_is_503_when_the_database_is_unreachable(start_server: StartServer) -> None:
    await require_service("postgres", "127.0.0.1", 5432)
    async with postgres_database() as url:
        srv = await start_server(DATABASE_URL=url)
        assert (await srv.get("/health")).status_code == 200
        dbname = url.rsplit("/", 1)[1]
        conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        try:
            await conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
        finally:
            await conn.close()
        r = await srv.get("/health")
        assert r.status_code == 503
        assert r.json()["database"] == "down"
        await srv.stop()


async def test_stats_need_an_admin(server: Server, name: Namer) -> None:
    assert (await server.get("/api/v1/ws/stats")).status_code == 401
    user = await server.user(name())
    assert (await server.get("/api/v1/ws/stats", user)).status_code == 403


async def test_stats_count_a_short_session(start_server: StartServer, name: Namer) -> None:
    srv = await start_server()
    admin = await srv.admin()
    alice, bob = await srv.user(name()), await srv.user(name())
    room = name("room")
    a = await joined(srv, alice, room, "shared")
    await joined(srv, bob, room)
    for i in range(3):
        await a.send(
            {
                "type": "chat",
                "room_id": room,
                "message_id": f"s{i}",
                "data": {"message": f"hello {i}", "ai": False},
            }
        )
        await a.expect("delivery_confirmation")
    await a.send({"type": "chat", "data": {"message": "hi model"}})
    await a.expect("chat", lambda f: f["data"].get("done") is True)
    stats = (await srv.get("/api/v1/ws/stats", admin)).json()
    assert stats["active_connections"] == 2
    assert stats["active_users"] == 2
    assert stats["total_connections"] == 2
    assert stats["rooms"]["shared"] == 1
    assert stats["messages_received"] >= 5  # 2 auto-joins + 3 chats + 1 AI chat
    assert stats["messages_sent"] > 0
    assert stats["queued_messages"] == 0
    assert stats["uptime_seconds"] >= 0
    assert stats["ai"]["requests"] == 1 and stats["ai"]["tokens_used"] > 0
    assert stats["uploads"] == {"in_progress": 0, "completed": 0}


async def test_metrics_are_prometheus_text(server: Server, name: Namer) -> None:
    await server.connect(await server.user(name()))
    r = await server.get("/metrics")
    assert r.status_code == 200
    assert "text/plain" in r.headers["content-type"]
    assert "chinwag_active_connections" in r.text
    assert "chinwag_messages_received_total" in r.text


async def test_logs_never_contain_tokens_or_passwords(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(LOG_LEVEL="debug")
    user = await srv.user(name())
    client = await srv.connect(user)
    await client.send({"type": "ping"})
    await client.expect("pong")
    await client.close()
    await srv.get("/api/v1/auth/me", user)
    await srv.stop()
    log = srv.log
    assert "WebSocket /api/v1/ws/ws" in log  # the access line is there, redacted
    assert user.ws_token not in log
    assert user.access_token not in log
    assert PASSWORD not in log


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEBSOCKET_HEARTBEAT_INTERVAL", "soon"),
        ("BROKER_URL", "carrier-pigeon://"),
        ("AI_PRICES", "{not json"),
        ("JWT_SECRET", "short"),
    ],
)
async def test_bad_setting_stops_startup_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, variable: value, "DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "chinwag", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and variable in lines[0], result.stderr
