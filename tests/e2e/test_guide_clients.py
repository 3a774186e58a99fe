"""The guide's own client examples, pointed at a running chinwag with no settings,
get a streamed reply and a completion."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.support import Namer, Server

GUIDE = Path(__file__).parent / "guide"


async def test_guide_javascript_client_gets_a_streamed_reply(server: Server, name: Namer) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    user = await server.user(name())
    result = await asyncio.to_thread(
        subprocess.run,
        [
            node,
            "--experimental-websocket",
            "--no-warnings",
            str(GUIDE / "drive_guide_client.mjs"),
            str(server.port),
            user.ws_token,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    frames = json.loads(result.stdout.strip().splitlines()[-1])
    chunks = [f for f in frames if f["data"].get("streaming")]
    assert len(chunks) > 3 and frames[-1]["data"]["done"] is True
    assert "Hello, AI!" in "".join(f["data"]["content"] for f in chunks)


async def test_guide_python_client_gets_a_streamed_reply(server: Server, name: Namer) -> None:
    user = await server.user(name())
    source = (
        (GUIDE / "guide_client.py")
        .read_text()
        .replace("localhost:8000", f"localhost:{server.port}")
    )
    # The guide was written for the websockets API that has ``connection.closed``;
    # today's package keeps that API as websockets.legacy.
    from websockets.legacy.client import connect as legacy_connect

    shim = types.SimpleNamespace(connect=legacy_connect, exceptions=websockets.exceptions)
    namespace: dict[str, Any] = {"__name__": "guide_client", "websockets": shim}
    exec(compile(source.replace("import websockets\n", ""), "guide_client.py", "exec"), namespace)
    frames: list[dict[str, Any]] = []
    done = asyncio.Event()

    base: Any = namespace["WebSocketChatClient"]

    class Driven(base):  # type: ignore[misc]
        async def handle_chat_message(self, message: dict[str, Any]) -> None:
            frames.append(message)
            if message["data"].get("done"):
                done.set()
                await self.close()

        async def handle_typing_indicator(self, message: dict[str, Any]) -> None:
            pass

    client = Driven(user.ws_token)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        runner = asyncio.create_task(client.connect())
        async with asyncio.timeout(20):
            while client.websocket is None:
                await asyncio.sleep(0.01)
            await client.send_chat_message("Hello, AI!")
            await done.wait()
        await runner
    chunks = [f for f in frames if f["data"].get("streaming")]
    assert len(chunks) > 3 and frames[-1]["data"]["done"] is True
