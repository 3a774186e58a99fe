"""Reads over the HTTP API with the client's access token: search and history.

The token is the one ``Credentials`` keeps fresh; a 401 (revoked or expired early)
signs in again once and repeats the request. Any other refusal is a
``RequestError`` carrying the server's error code (``FORBIDDEN``, ``NOT_FOUND``,
``INVALID_MESSAGE`` …), as a refused WebSocket request is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from chinwag_client.errors import RequestError
from chinwag_client.models import Event, SearchResult

if TYPE_CHECKING:
    from chinwag_client.client import Client


async def search(
    client: Client, q: str, room_id: str | None, limit: int | None
) -> list[SearchResult]:
    params: dict[str, str | int] = {"q": q}
    if room_id is not None:
        params["room_id"] = room_id
    if limit is not None:
        params["limit"] = limit
    body = await get_json(client, "/api/v1/search", params)
    return [SearchResult.from_data(item) for item in body.get("results", [])]


async def history(
    client: Client, room_id: str, before_seq: int | None, limit: int | None
) -> list[Event]:
    params: dict[str, str | int] = {}
    if before_seq is not None:
        params["before_seq"] = before_seq
    if limit is not None:
        params["limit"] = limit
    body = await get_json(client, f"/api/v1/ws/rooms/{quote(room_id, safe='')}/messages", params)
    return [Event.from_frame(item) for item in body.get("messages", [])]


async def get_json(client: Client, path: str, params: dict[str, str | int]) -> dict[str, Any]:
    """GET ``path`` with the access token; the JSON object answered, or
    ``RequestError`` (``SignInError`` if signing in again is refused)."""
    credentials = client.credentials
    r = await client.http.get(path, params=params, headers=await credentials.auth_headers())
    if r.status_code == 401:
        await credentials.sign_in()
        r = await client.http.get(path, params=params, headers=await credentials.auth_headers())
    if r.status_code >= 400:
        raise _refused(r)
    body = r.json()
    if not isinstance(body, dict):
        raise RequestError("INVALID_RESPONSE", f"{path} answered {type(body).__name__}")
    return body


def _refused(r: httpx.Response) -> RequestError:
    try:
        body = r.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": r.text}
    code = str(body.get("code") or f"HTTP_{r.status_code}")
    data = {**body, "status": r.status_code}
    if "retry-after" in r.headers:
        data["retry_after"] = r.headers["retry-after"]
    return RequestError(code, str(body.get("detail", "")), body.get("details"), data)
