"""A real Anthropic-compatible HTTP server for the provider tests.

``POST /v1/messages`` answers with real SSE as the Messages API streams it
(``event: <type>`` + ``data: {...}`` pairs: ``message_start`` with the input
tokens, ``content_block_start``, ``content_block_delta`` text deltas,
``content_block_stop``, ``message_delta`` with ``stop_reason`` and the output
tokens, ``message_stop``). What it does is chosen by the request's ``model``:

``claude-ok``        three text deltas, usage 30 in / 9 out
``claude-fail-500``  HTTP 500 with an Anthropic-style error body
``claude-overload``  an ``error`` event (overloaded) in the middle of the stream
``claude-drop``      two deltas, then the connection is closed mid-body
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.ai.fake_openai import serving

REPLY_PIECES = ("Claude", " says", " hello.")
INPUT_TOKENS, OUTPUT_TOKENS = 30, 9
SECRET_DETAIL = "key sk-ant-...c0ffee on anthropic-gw.internal:8443 /models/v7"


@dataclass
class FakeAnthropic:
    base_url: str = ""
    #: JSON bodies of the requests, in arrival order.
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: The key each request carried (``x-api-key`` or a bearer token).
    api_keys: list[str | None] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.json()
        self.requests.append(body)
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.api_keys.append(request.headers.get("x-api-key") or bearer or None)
        mode = body["model"]
        if mode == "claude-fail-500":
            error = {"type": "error", "error": {"type": "api_error", "message": SECRET_DETAIL}}
            await JSONResponse(error, status_code=500)(scope, receive, send)
            return
        events = [
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_fake",
                        "type": "message",
                        "role": "assistant",
                        "model": mode,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
                    },
                },
            ),
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        pieces = REPLY_PIECES[:2] if mode in ("claude-drop", "claude-overload") else REPLY_PIECES
        events += [
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
            )
            for p in pieces
        ]
        if mode == "claude-overload":
            events.append(
                _sse(
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": SECRET_DETAIL},
                    },
                )
            )
        elif mode != "claude-drop":
            events += [
                _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
                _sse(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": OUTPUT_TOKENS},
                    },
                ),
                _sse("message_stop", {"type": "message_stop"}),
            ]
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for item in events:
            await send({"type": "http.response.body", "body": item, "more_body": True})
        if mode == "claude-drop":
            return  # uvicorn closes the connection mid-body
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _sse(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


@contextmanager
def running_fake_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    app = Starlette(routes=[Route("/v1/messages", fake, methods=["POST"])])
    with serving(app) as base:
        fake.base_url = base
        yield fake
