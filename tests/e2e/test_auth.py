"""Accounts and tokens over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Namer, Server, StartServer

pytestmark = pytest.mark.storage


async def test_register_login_me_round_trip(server: Server, name: Namer) -> None:
    username = name()
    r = await server.register(username)
    assert r.status_code == 201
    assert r.json()["username"] == username and r.json()["is_admin"] is False
    user = await server.user(username, register=False)
    me = await server.get("/api/v1/auth/me", user)
    assert me.status_code == 200
    assert set(me.json()) == {"id", "username", "is_admin", "created_at"}
    assert me.json()["created_at"].endswith("Z")


async def test_register_twice_is_409_and_short_password_422(server: Server, name: Namer) -> None:
    username = name()
    assert (await server.register(username)).status_code == 201
    assert (await server.register(username)).status_code == 409
    r = await server.register(name(), password="short")
    assert r.status_code == 422
    assert "password" in r.json()["detail"]


async def test_login_accepts_oauth2_form(server: Server, name: Namer) -> None:
    username = name()
    await server.register(username)
    r = await server.http.post(
        server.base + "/api/v1/auth/login",
        data={"username": username, "password": "correct-horse-battery"},
    )
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer"
    assert r.json()["expires_in"] > 0


async def test_wrong_password_is_401(server: Server, name: Namer) -> None:
    username = name()
    await server.register(username)
    r = await server.login(username, "wrong-password")
    assert r.status_code == 401


async def test_login_is_throttled_after_repeated_failures(
    start_server: StartServer, name: Namer
) -> None:
    srv = await start_server(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_SECONDS=60)
    username = name()
    await srv.register(username)
    for _ in range(3):
        assert (await srv.login(username, "bad-password")).status_code == 401
    r = await srv.login(username)  # even the right password waits out the lockout
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1


async def test_ws_token_endpoint_needs_access_token(server: Server, name: Namer) -> None:
    user = await server.user(name())
    r = await server.post("/api/v1/ws/token")
    assert r.status_code == 401
    r = await server.post("/api/v1/ws/token", user)
    assert r.status_code == 200
    assert r.json()["expires_in"] == 86400
    # A WebSocket token is not an access token.
    r = await server.http.get(
        server.base + "/api/v1/auth/me", headers={"Authorization": f"Bearer {user.ws_token}"}
    )
    assert r.status_code == 401


async def test_admin_is_bootstrapped_from_settings(server: Server) -> None:
    admin = await server.admin()
    me = await server.get("/api/v1/auth/me", admin)
    assert me.json()["is_admin"] is True


async def test_create_admin_command_makes_an_admin(
    start_server: StartServer, tmp_path: Path, name: Namer
) -> None:
    import subprocess
    import sys

    srv = await start_server()
    username = name("boss")
    env = dict(srv.env)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chinwag",
            "create-admin",
            username,
            "--password",
            "boss-password-1",
        ],
        env=env,
        cwd=srv.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    boss = await srv.user(username, "boss-password-1", register=False)
    assert (await srv.get("/api/v1/auth/me", boss)).json()["is_admin"] is True
