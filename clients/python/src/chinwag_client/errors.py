"""Errors the SDK raises. Each says what the application should do."""

from __future__ import annotations

from typing import Any


class ChinwagError(Exception):
    """Base class of every SDK error."""


class SignInError(ChinwagError):
    """The server refused the username or password (or the account is disabled):
    retrying will not help; ask the user again."""


class RequestError(ChinwagError):
    """The server answered a request with an ``error`` frame. ``code`` is the
    protocol's error code (``NOT_IN_ROOM``, ``FORBIDDEN`` …; see docs/protocol.md §6)."""

    def __init__(
        self, code: str, message: str, details: Any = None, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        self.data = data or {}


class ClientClosed(ChinwagError):
    """The client was closed (the ``async with`` block ended, or it gave up after
    an error that reconnecting cannot fix, given as ``__cause__``)."""
