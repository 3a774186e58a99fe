"""A real OpenAI-compatible HTTP server for the provider tests.

Starlette routes ``POST /v1/chat/completions`` to a raw ASGI endpoint served by
uvicorn in a background thread on a free 127.0.0.1 port. The endpoint answers with
real SSE (``data: {...}\\n\\n`` chunks, ``data: [DONE]``); what it does is chosen by
the request's ``model``, so one server covers every scenario:

``ok``         three deltas, ``finish_reason: stop``, usage in the last chunk, [DONE]
``no-usage``   the same without the usage chunk
``fail-500``   HTTP 500 with an OpenAI-style error body
``flaky``      HTTP 503 (retry-after-ms: 1) on the first request, then like ``ok``
``hang``       reads the request, never answers, waits for the client to leave
``drop``       two deltas, then the connection is closed mid-body (no finish, no [DONE])
``truncated``  two deltas, then a *clean* end of the body without finish or [DONE]
``stall``      one delta, then waits for the client to leave
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

REPLY_PIECES = ("Hello", " there", ", friend!")
USAGE = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}


@dataclass
class FakeOpenAI:
    """Handle on the running fake endpoint, shared with the server thread."""

    base_url: str = ""
    reply_pieces: tuple[str, ...] = REPLY_PIECES
    usage: dict[str, int] = field(default_factory=lambda: dict(USAGE))
    #: JSON bodies of the chat requests, in arrival order (retries included).
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Authorization headers of those requests.
    auth_headers: list[str | None] = field(default_factory=list)
    #: Set when a client went away while the server was still answering it.
    client_left: threading.Event = field(default_factory=threading.Event)
    _flaky_failed: bool = False

    async def wait_client_left(self) -> bool:
        """True once the server has seen a client disconnect (waits at most 5 s)."""
        return await asyncio.to_thread(self.client_left.wait, 5.0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.json()
        self.requests.append(body)
        self.auth_headers.append(request.headers.get("authorization"))
        mode = body["model"]
        if mode == "fail-500":
            error = {"error": {"message": "the fake model exploded", "type": "server_error"}}
            await JSONResponse(error, status_code=500)(scope, receive, send)
            return
        if mode == "flaky" and not self._flaky_failed:
            self._flaky_failed = True
            error = {"error": {"message": "busy, try again", "type": "server_error"}}
            retry_soon = {"retry-after-ms": "1"}
            await JSONResponse(error, status_code=503, headers=retry_soon)(scope, receive, send)
            return
        if mode == "hang":
            await self._wait_for_disconnect(receive)
            return

        pieces = self.reply_pieces
        events = [_chunk(mode, {"role": "assistant", "content": ""})]
        if mode in ("drop", "truncated"):
            events += [_chunk(mode, {"content": p}) for p in pieces[:2]]
        elif mode == "stall":
            events.append(_chunk(mode, {"content": pieces[0]}))
        else:
            events += [_chunk(mode, {"content": p}) for p in pieces]
            events.append(_chunk(mode, {}, finish_reason="stop"))
            if mode != "no-usage":
                events.append(_usage_chunk(mode, self.usage))
            events.append(b"data: [DONE]\n\n")

        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        if mode == "stall":
            await self._wait_for_disconnect(receive)
        elif mode == "drop":
            # Returning mid-body makes uvicorn close the connection: the chunked body
            # never ends, as when a proxy or the model server dies mid-stream.
            return
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _wait_for_disconnect(self, receive: Receive) -> None:
        # The request body is consumed, so the next message is the disconnect.
        while (await receive())["type"] != "http.disconnect":
            pass
        self.client_left.set()


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return _sse(model, [choice], None)


def _usage_chunk(model: str, usage: dict[str, int]) -> bytes:
    return _sse(model, [], usage)


def _sse(model: str, choices: list[dict[str, Any]], usage: dict[str, int] | None) -> bytes:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": choices,
        "usage": usage,
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


@contextmanager
def running_fake_openai() -> Iterator[FakeOpenAI]:
    """Serve a fresh ``FakeOpenAI`` on a free port; stop it (and join its thread) on exit."""
    fake = FakeOpenAI()
    app = Starlette(routes=[Route("/v1/chat/completions", fake, methods=["POST"])])
    with serving(app) as base:
        fake.base_url = base + "/v1"
        yield fake


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free 127.0.0.1 port: its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: early connections wait in the backlog,
    # so no "is it up yet?" polling is needed.
    sock.listen(64)
    config = uvicorn.Config(
        app,
        lifespan="off",
        loop="asyncio",
        http="h11",
        log_level="critical",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "fake HTTP server did not stop"
