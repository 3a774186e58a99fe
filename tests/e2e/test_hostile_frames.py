"""Property, against a live server in a bounded run: hostile frames (wrong shapes, huge
and negative numbers, deep nesting, odd Unicode, not JSON) never get INTERNAL_ERROR,
never crash the server and never cost the connection: a ping after each still gets
its pong on the same socket."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests.protocol.hostile import R, frames
from tests.support import PASSWORD, Server

pytestmark = pytest.mark.storage  # driver errors differ between SQLite and PostgreSQL


@pytest.fixture(scope="module")
def socket(server: Server) -> Iterator[ClientConnection]:
    """One connection for the whole run (sync: hypothesis drives plain functions)."""
    username = f"h{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.base, timeout=30) as http:
        assert (
            http.post(
                "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
            ).status_code
            == 201
        )
        access = http.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        ).json()
        token = http.post(
            "/api/v1/ws/token", headers={"Authorization": f"Bearer {access['access_token']}"}
        ).json()["token"]
    with connect(
        f"{server.ws_base}/api/v1/ws/ws?token={token}", max_size=None, open_timeout=10
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "connect"
        ws.send(json.dumps({"type": "join_room", "room_id": R, "data": {"room_type": "shared"}}))
        while json.loads(ws.recv(timeout=10))["type"] != "join_room":
            pass
        yield ws


def _answers_until_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """What arrives up to the next pong (frames are answered in order; a dead socket
    raises ConnectionClosed)."""
    seen = []
    while (frame := json.loads(ws.recv(timeout=30)))["type"] != "pong":
        seen.append(frame)
    return seen


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=frames, binary=st.booleans())
@example(
    text=json.dumps({"type": "chat", "data": {"message": "hi", "conversation_id": 2**63}}),
    binary=False,
)
@example(text=json.dumps({"type": "sync", "data": {"rooms": {R: 2**63}}}), binary=False)
def test_hostile_frames_get_client_errors_and_the_connection_survives(
    socket: ClientConnection, server: Server, text: str, binary: bool
) -> None:
    socket.send(text.encode() if binary else text)
    socket.send(json.dumps({"type": "ping"}))
    answers = _answers_until_pong(socket)
    codes = {f["data"].get("code") for f in answers if f["type"] == "error"}
    assert "INTERNAL_ERROR" not in codes, (text, answers)
    assert server.proc is not None and server.proc.poll() is None
    assert "Traceback" not in server.log
