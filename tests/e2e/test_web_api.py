"""The HTTP endpoints the web app and the admin page use (SPEC §9), account disable
on one process and across a cluster, and the pages' own headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.cluster_helpers import cluster_env, start_cluster
from tests.support import Namer, Server

pytestmark = pytest.mark.storage


async def _room(srv: Server, owner: Any, room_id: str, room_type: str = "shared") -> None:
    r = await srv.post(
        "/api/v1/ws/rooms",
        owner,
        json={"room_id": room_id, "room_name": room_id.title(), "room_type": room_type},
    )
    assert r.status_code == 201, r.text


async def _say(srv: Server, user: Any, room_id: str, text: str) -> int:
    ws = await srv.connect(user)
    await ws.send({"type": "join_room", "room_id": room_id})
    await ws.expect("join_room")
    await ws.send(
        {
            "type": "chat",
            "room_id": room_id,
            "message_id": text,
            "data": {"message": text, "ai": False},
        }
    )
    done = await ws.expect("delivery_confirmation")
    await ws.close()
    return int(done["data"]["seq"])


async def test_my_rooms_carry_unread_last_seq_and_last_message(server: Server, name: Namer) -> None:
    alice, bob = await server.user(name("a")), await server.user(name("b"))
    room = name("r")
    await _room(server, alice, room)
    await _say(server, bob, room, "first")
    seq = await _say(server, bob, room, "second **bold**")
    await _say(server, alice, room, "mine do not count")
    r = await server.get("/api/v1/ws/rooms?scope=mine", alice)
    assert r.status_code == 200, r.text
    [item] = [x for x in r.json()["rooms"] if x["room_id"] == room]
    assert item["unread"] == 2
    assert item["last_seq"] >= seq + 1
    assert item["last_message"]["content"] == "mine do not count"
    assert item["last_message"]["username"] == alice.username

    ws = await server.connect(alice)
    await ws.send({"type": "read_receipt", "room_id": room, "data": {"seq": seq}})
    await ws.send({"type": "ping"})
    await ws.expect("pong")
    r = await server.get("/api/v1/ws/rooms?scope=mine", alice)
    [item] = [x for x in r.json()["rooms"] if x["room_id"] == room]
    assert item["unread"] == 0


async def test_shared_scope_lists_only_shared_rooms_and_whether_the_caller_is_in(
    server: Server, name: Namer
) -> None:
    alice, bob = await server.user(name("a")), await server.user(name("b"))
    shared, group = name("s"), name("g")
    await _room(server, alice, shared)
    await _room(server, alice, group, "group")
    r = await server.get("/api/v1/ws/rooms?scope=shared", bob)
    rooms = {x["room_id"]: x for x in r.json()["rooms"]}
    assert shared in rooms and group not in rooms
    assert rooms[shared]["member"] is False and rooms[shared]["members"] == 1
    r = await server.get("/api/v1/ws/rooms?scope=shared", alice)
    assert {x["room_id"]: x for x in r.json()["rooms"]}[shared]["member"] is True
    r = await server.get("/api/v1/ws/rooms?scope=everything", alice)
    assert r.status_code == 422 and "scope" in r.json()["detail"]


async def test_user_search_by_prefix_ignores_case_and_needs_a_token(
    server: Server, name: Namer
) -> None:
    stem = name("Zed")
    a = await server.user(stem + "_one")
    await server.user(stem + "_two")
    await server.user(name("other"))
    r = await server.get(f"/api/v1/users?prefix={stem.lower()}", a)
    assert r.json()["users"] == [stem + "_one", stem + "_two"]
    r = await server.get("/api/v1/users?prefix=%25", a)  # a LIKE wildcard is a plain character
    assert r.json()["users"] == []
    assert (await server.get("/api/v1/users?prefix=a")).status_code == 401


async def test_admin_endpoints_refuse_others_and_list_users_with_spend(
    server: Server, name: Namer
) -> None:
    bob = await server.user(name("b"))
    assert (await server.get("/api/v1/admin/users", bob)).status_code == 403
    r = await server.http.patch(
        server.base + f"/api/v1/admin/users/{bob.username}",
        headers=bob.auth,
        json={"disabled": True},
    )
    assert r.status_code == 403
    ws = await server.connect(bob)
    await ws.send({"type": "chat", "message_id": "q1", "data": {"message": "hi AI"}})
    await ws.expect("chat", lambda f: f["data"].get("done") is True)
    admin = await server.admin()
    users = {
        u["username"]: u for u in (await server.get("/api/v1/admin/users", admin)).json()["users"]
    }
    assert users[bob.username]["ai"]["tokens_used"] > 0
    assert users[bob.username]["online"] is True
    assert users[bob.username]["budget"] == {"tokens_per_day": None, "usd_per_month": None}
    rooms = (await server.get("/api/v1/admin/rooms", admin)).json()["rooms"]
    assert all({"room_id", "members", "last_seq", "owner"} <= set(r) for r in rooms)


async def test_budget_override_is_stored_replaced_and_cleared(server: Server, name: Namer) -> None:
    bob, admin = await server.user(name("b")), await server.admin()
    url = server.base + f"/api/v1/admin/users/{bob.username}"
    r = await server.http.patch(
        url, headers=admin.auth, json={"budget": {"tokens_per_day": 500, "usd_per_month": 2.5}}
    )
    assert r.json()["budget"] == {"tokens_per_day": 500, "usd_per_month": 2.5}
    r = await server.http.patch(url, headers=admin.auth, json={"is_admin": True})
    assert r.json()["budget"]["tokens_per_day"] == 500 and r.json()["is_admin"] is True
    r = await server.http.patch(url, headers=admin.auth, json={"budget": None})
    assert r.json()["budget"] == {"tokens_per_day": None, "usd_per_month": None}
    r = await server.http.patch(url, headers=admin.auth, json={"budget": {"tokens_per_day": -1}})
    assert r.status_code == 422 and "tokens_per_day" in r.json()["detail"]
    r = await server.http.patch(url, headers=admin.auth, json={"colour": "red"})
    assert r.status_code == 422
    r = await server.http.patch(
        server.base + "/api/v1/admin/users/nobody-here", headers=admin.auth, json={"disabled": True}
    )
    assert r.status_code == 404
    r = await server.http.patch(
        server.base + f"/api/v1/admin/users/{admin.username}",
        headers=admin.auth,
        json={"disabled": True},
    )
    assert r.status_code == 403


async def test_disabling_a_user_refuses_their_tokens_and_closes_their_sockets_with_4401(
    server: Server, name: Namer
) -> None:
    bob, admin = await server.user(name("b")), await server.admin()
    ws = await server.connect(bob)
    url = server.base + f"/api/v1/admin/users/{bob.username}"
    r = await server.http.patch(url, headers=admin.auth, json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True
    err = await ws.expect("error")
    assert err["data"]["code"] == "AUTH_FAILED"
    assert await ws.wait_closed() == 4401
    assert (await server.get("/api/v1/auth/me", bob)).status_code == 401
    assert (await server.login(bob.username)).status_code == 401
    again = await server.raw_connect(bob)
    assert (await again.expect("error"))["data"]["code"] == "AUTH_FAILED"
    assert await again.wait_closed() == 4401

    await server.http.patch(url, headers=admin.auth, json={"disabled": False})
    assert (await server.get("/api/v1/auth/me", bob)).status_code == 200
    await server.connect(bob)


async def test_disabling_closes_the_users_sockets_on_every_process(
    pg_url: str, start_server: Callable[..., Any], name: Namer
) -> None:
    a, b = await start_cluster(start_server, 2, cluster_env(pg_url))
    bob = await a.user(name("b"))
    on_b = await b.connect(bob)
    admin = await a.admin()
    r = await a.http.patch(
        a.base + f"/api/v1/admin/users/{bob.username}", headers=admin.auth, json={"disabled": True}
    )
    assert r.status_code == 200
    assert await on_b.wait_closed() == 4401
    assert (await b.get("/api/v1/auth/me", bob)).status_code == 401


async def test_pages_are_served_with_a_strict_content_security_policy(server: Server) -> None:
    for path in ("/", "/admin"):
        r = await server.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    r = await server.get("/static/js/chinwag-client.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]


async def test_docs_and_redoc_load_every_asset_from_this_server(server: Server) -> None:
    import re

    for path in ("/docs", "/redoc"):
        html = (await server.get(path)).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert urls and all(u.startswith("/") for u in urls), urls
        for url in urls:
            assert (await server.get(url)).status_code == 200, url
        assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html


async def test_receipts_give_each_members_cursors_to_those_who_may_see_the_room(
    server: Server, name: Namer
) -> None:
    alice, bob = await server.user(name("a")), await server.user(name("b"))
    room = name("g")
    await _room(server, alice, room, "group")
    r = await server.post(
        f"/api/v1/ws/rooms/{room}/members", alice, json={"username": bob.username}
    )
    assert r.status_code == 201, r.text
    seq = await _say(server, alice, room, "hello")
    ws = await server.connect(bob)
    await ws.send({"type": "read_receipt", "room_id": room, "data": {"seq": seq}})
    await ws.send({"type": "ping"})
    await ws.expect("pong")
    r = await server.get(f"/api/v1/ws/rooms/{room}/receipts", alice)
    cursors = {m["username"]: m for m in r.json()["members"]}
    assert cursors[bob.username]["read_seq"] == seq
    assert cursors[bob.username]["delivered_seq"] >= seq
    outsider = await server.user(name("c"))
    assert (await server.get(f"/api/v1/ws/rooms/{room}/receipts", outsider)).status_code == 403
