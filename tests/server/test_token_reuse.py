"""A token checked once is not checked again, but its expiry still is."""

from __future__ import annotations

import pytest

from chinwag.core.session import Identity
from chinwag.protocol.errors import AuthFailed
from chinwag.server import auth
from chinwag.server.auth import ACCESS, WEBSOCKET, Tokens

ALICE = Identity(7, "alice", False)


def test_a_token_presented_again_gives_the_same_claims() -> None:
    tokens = Tokens("s" * 32, access_ttl=60, ws_ttl=60)
    token = tokens.ws_token(ALICE)
    first = tokens.verify(token, WEBSOCKET)
    assert tokens.verify(token, WEBSOCKET) == first
    assert first.identity == ALICE


def test_a_kept_token_is_still_refused_for_the_other_audience() -> None:
    tokens = Tokens("s" * 32, access_ttl=60, ws_ttl=60)
    token = tokens.ws_token(ALICE)
    tokens.verify(token, WEBSOCKET)
    with pytest.raises(AuthFailed, match="not an access token"):
        tokens.verify(token, ACCESS)


def test_a_kept_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens("s" * 32, access_ttl=60, ws_ttl=60)
    token = tokens.ws_token(ALICE)
    claims = tokens.verify(token, WEBSOCKET)
    later = claims.expires_at + 1
    monkeypatch.setattr(auth, "time", _Clock(later))
    with pytest.raises(AuthFailed, match="expired"):
        tokens.verify(token, WEBSOCKET)


class _Clock:
    """Stands in for the ``time`` module inside ``auth``: its ``time()`` is fixed."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now
