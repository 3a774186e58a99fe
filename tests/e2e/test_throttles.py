"""Throttles a hostile client meets over HTTP: failed logins per (username, address)
with growing waits, registrations and every HTTP request per address, state shared
through Redis, and proxies' X-Forwarded-For counting only when listed (SPEC §12).

Clients appear from different addresses by binding to other loopback addresses
(127.0.0.2 and up reach a server listening on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.cluster_helpers import REDIS_URL, cluster_env, eventually
from tests.e2e.test_cluster_faults import PrivateRedis, private_redis  # noqa: F401 - fixture
from tests.support import ADMIN, PASSWORD, Namer, Server, StartServer, require_service

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"


@pytest.fixture
async def from_address() -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """``from_address("127.0.0.2")``: an HTTP client whose requests come from there."""
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            timeout=30, transport=httpx.AsyncHTTPTransport(local_address=address)
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def login(
    http: httpx.AsyncClient, srv: Server, username: str, password: str, **headers: str
) -> httpx.Response:
    return await http.post(
        srv.base + LOGIN, json={"username": username, "password": password}, headers=headers
    )


# ---- failed logins ---------------------------------------------------------------------


async def test_failures_for_admin_from_one_address_do_not_refuse_admin_elsewhere(
    start_server: StartServer, from_address: Callable[[str], httpx.AsyncClient]
) -> None:
    srv = await start_server(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_SECONDS=600)
    attacker = from_address("127.0.0.2")
    for _ in range(3):
        assert (await login(attacker, srv, ADMIN[0], "wrong-guess")).status_code == 401
    refused = await login(attacker, srv, ADMIN[0], ADMIN[1])
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    r = await login(from_address("127.0.0.3"), srv, ADMIN[0], ADMIN[1])
    assert r.status_code == 200, r.text


async def test_failures_for_one_user_do_not_refuse_another_users_login_from_that_address(
    start_server: StartServer, from_address: Callable[[str], httpx.AsyncClient], name: Namer
) -> None:
    srv = await start_server(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_SECONDS=600)
    victim = name()
    assert (await srv.register(victim)).status_code == 201
    shared = from_address("127.0.0.2")
    for _ in range(3):
        assert (await login(shared, srv, ADMIN[0], "wrong-guess")).status_code == 401
    assert (await login(shared, srv, victim, PASSWORD)).status_code == 200


async def test_failed_logins_wait_longer_each_time_they_go_on(start_server: StartServer) -> None:
    srv = await start_server(LOGIN_MAX_FAILURES=2, LOGIN_LOCKOUT_SECONDS=1)
    waits: dict[int, int] = {}  # failures so far -> the first Retry-After refused with
    failures = 0
    deadline = asyncio.get_running_loop().time() + 30
    while failures < 4 or failures not in waits:
        assert asyncio.get_running_loop().time() < deadline, waits
        r = await srv.login(ADMIN[0], "wrong-guess")
        if r.status_code == 401:
            failures += 1
            continue
        assert r.status_code == 429, r.text
        waits.setdefault(failures, int(r.headers["Retry-After"]))
        await asyncio.sleep(0.2)  # a refused attempt counts nothing: poll until it passes
    # 2 failures wait out a 1 s window; 4 within 10 s wait for the 10 s one.
    assert waits[2] == 1 and waits[4] > 1, waits


async def test_correct_login_clears_that_pairs_failures(start_server: StartServer) -> None:
    srv = await start_server(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_SECONDS=600)
    for _ in range(2):
        assert (await srv.login(ADMIN[0], "wrong-guess")).status_code == 401
    assert (await srv.login(ADMIN[0], ADMIN[1])).status_code == 200
    for _ in range(2):
        assert (await srv.login(ADMIN[0], "wrong-guess")).status_code == 401
    assert (await srv.login(ADMIN[0], ADMIN[1])).status_code == 200


async def test_login_throttle_is_shared_by_every_process_and_outlives_a_restart(
    pg_url: str, start_server: StartServer
) -> None:
    env = cluster_env(pg_url, LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_SECONDS=600)
    a = await start_server(**env)
    b = await start_server(**env)
    for _ in range(3):
        assert (await a.login(ADMIN[0], "wrong-guess")).status_code == 401
    assert (await b.login(ADMIN[0], ADMIN[1])).status_code == 429
    await a.stop()
    await a.start()
    assert (await a.login(ADMIN[0], ADMIN[1])).status_code == 429


# ---- registrations and the HTTP API ------------------------------------------------------


async def test_registration_is_rate_limited_per_address(
    start_server: StartServer, from_address: Callable[[str], httpx.AsyncClient], name: Namer
) -> None:
    srv = await start_server(REGISTER_RATE_LIMIT_REQUESTS=2, REGISTER_RATE_LIMIT_WINDOW=600)
    for _ in range(2):
        assert (await srv.register(name())).status_code == 201
    refused = await srv.register(name())
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "RATE_LIMIT"
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    other = from_address("127.0.0.2")
    r = await other.post(srv.base + REGISTER, json={"username": name(), "password": PASSWORD})
    assert r.status_code == 201, r.text


async def test_http_api_is_rate_limited_per_address(
    start_server: StartServer, from_address: Callable[[str], httpx.AsyncClient]
) -> None:
    srv = await start_server(HTTP_RATE_LIMIT_REQUESTS=5, HTTP_RATE_LIMIT_WINDOW=600)
    for _ in range(5):
        assert (await srv.get("/api/v1/auth/me")).status_code == 401
    refused = await srv.get("/api/v1/auth/me")
    assert refused.status_code == 429
    assert refused.json()["code"] == "RATE_LIMIT"
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    assert (await srv.get("/health")).status_code == 200  # probes are not limited
    other = from_address("127.0.0.2")
    assert (await other.get(srv.base + "/api/v1/auth/me")).status_code == 401


async def test_http_rate_limit_is_shared_through_redis(start_server: StartServer) -> None:
    await require_service("redis", "127.0.0.1", 6379)
    env: dict[str, Any] = {
        "BROKER_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}:",
        "HTTP_RATE_LIMIT_REQUESTS": 4,
        "HTTP_RATE_LIMIT_WINDOW": 600,
    }
    a = await start_server(**env)
    b = await start_server(**env)
    for srv in (a, b, a, b):
        assert (await srv.get("/api/v1/auth/me")).status_code == 401
    assert (await a.get("/api/v1/auth/me")).status_code == 429
    assert (await b.get("/api/v1/auth/me")).status_code == 429


async def test_a_login_is_not_queued_behind_a_burst_of_registrations(
    start_server: StartServer, name: Namer
) -> None:
    """Registrations hash in a bounded pool apart from the logins' (argon2 costs
    ~0.3 s of CPU each): a login sent while five registrations still wait for
    their hash is answered before most of them."""
    srv = await start_server()
    username = name()
    assert (await srv.register(username)).status_code == 201
    burst = [asyncio.create_task(srv.register(name())) for _ in range(6)]
    await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)
    r = await srv.login(username)
    assert r.status_code == 200, r.text
    still_hashing = sum(not task.done() for task in burst)
    assert [r.status_code for r in await asyncio.gather(*burst)] == [201] * 6
    assert still_hashing >= 3, still_hashing


# ---- proxies (FORWARDED_ALLOW_IPS) -------------------------------------------------------


async def test_forwarded_for_from_an_unlisted_peer_does_not_change_its_address(
    start_server: StartServer,
) -> None:
    srv = await start_server(HTTP_RATE_LIMIT_REQUESTS=3, HTTP_RATE_LIMIT_WINDOW=600)
    codes = [
        (
            await srv.http.get(
                srv.base + "/api/v1/auth/me", headers={"X-Forwarded-For": f"203.0.113.{i}"}
            )
        ).status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    assert "203.0.113." not in srv.log


async def test_forwarded_for_from_a_listed_proxy_is_the_clients_address(
    start_server: StartServer, from_address: Callable[[str], httpx.AsyncClient]
) -> None:
    srv = await start_server(
        HTTP_RATE_LIMIT_REQUESTS=3, HTTP_RATE_LIMIT_WINDOW=600, FORWARDED_ALLOW_IPS="127.0.0.1"
    )
    client = {"X-Forwarded-For": "203.0.113.7"}
    me = srv.base + "/api/v1/auth/me"
    codes = [(await srv.http.get(me, headers=client)).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    other = {"X-Forwarded-For": "203.0.113.8"}
    assert (await srv.http.get(me, headers=other)).status_code == 401
    assert "203.0.113.7" in srv.log  # the access log names the client, not the proxy
    # The same header from a peer that is not listed is ignored.
    stranger = from_address("127.0.0.2")
    codes = [
        (
            await stranger.get(
                srv.base + "/api/v1/auth/me", headers={"X-Forwarded-For": f"198.51.100.{i}"}
            )
        ).status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]


async def test_login_throttle_counts_the_forwarded_address_of_a_listed_proxy(
    start_server: StartServer,
) -> None:
    srv = await start_server(
        LOGIN_MAX_FAILURES=2, LOGIN_LOCKOUT_SECONDS=600, FORWARDED_ALLOW_IPS="127.0.0.1"
    )
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(2):
        r = await srv.http.post(
            srv.base + LOGIN,
            headers=attacker,
            json={"username": ADMIN[0], "password": "wrong-guess"},
        )
        assert r.status_code == 401
    r = await srv.http.post(
        srv.base + LOGIN,
        headers={"X-Forwarded-For": "203.0.113.9"},
        json={"username": ADMIN[0], "password": ADMIN[1]},
    )
    assert r.status_code == 200, r.text


async def _origin_check(srv: Server, **headers: str) -> int:
    """101 when the handshake with an https Origin is accepted, else its status."""
    user = await srv.user()
    url = f"{srv.ws_base}/api/v1/ws/ws?token={user.ws_token}"
    try:
        async with connect(
            url,
            origin=f"https://127.0.0.1:{srv.port}",  # type: ignore[arg-type]
            additional_headers=headers,
        ) as ws:
            assert orjson.loads(await ws.recv())["type"] == "connect"
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_forwarded_proto_counts_for_the_origin_check_only_from_a_listed_proxy(
    start_server: StartServer,
) -> None:
    trusted = await start_server(FORWARDED_ALLOW_IPS="127.0.0.1")
    assert await _origin_check(trusted, **{"X-Forwarded-Proto": "https"}) == 101
    untrusted = await start_server()
    assert await _origin_check(untrusted, **{"X-Forwarded-Proto": "https"}) == 403


async def test_logins_are_refused_not_unthrottled_while_redis_is_away(
    private_redis: PrivateRedis,  # noqa: F811 - the fixture
    start_server: StartServer,
) -> None:
    srv = await start_server(
        BROKER_URL=private_redis.url, REDIS_KEY_PREFIX=f"t{uuid.uuid4().hex[:10]}:"
    )
    assert (await srv.login(ADMIN[0], ADMIN[1])).status_code == 200
    await private_redis.kill()
    r = await srv.login(ADMIN[0], ADMIN[1])
    assert r.status_code == 503 and r.json()["code"] == "RATE_LIMIT", r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert (await srv.get("/api/v1/auth/me")).status_code == 401  # the general limit lets go
    await private_redis.start()
    await eventually(lambda: _logs_in(srv), within=20, what="logins after Redis returned")


async def _logs_in(srv: Server) -> bool:
    return (await srv.login(ADMIN[0], ADMIN[1])).status_code == 200
