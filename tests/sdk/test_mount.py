"""chinwag mounted under /chat in a host FastAPI app (examples/mount_in_fastapi.py),
served by uvicorn: the host keeps its routes and lifespan, and people chat through
the mount with the SDK."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chinwag_client import Client
from tests.support import PASSWORD, Server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mount_in_fastapi.py"


async def test_chinwag_mounted_under_chat_in_a_host_app_carries_a_conversation(
    start_server: Callable[..., Any],
) -> None:
    srv: Server = await start_server(command=[sys.executable, str(EXAMPLE)], prefix="/chat")
    home = await srv.http.get(f"http://127.0.0.1:{srv.port}/")
    assert home.json() == {"app": "my product", "started": True, "chat": "/chat"}
    health = await srv.get("/health")
    assert health.status_code == 200 and health.json()["database"] == "ok"
    await srv.user("ann")
    await srv.user("ben")
    async with Client(srv.base, "ann", PASSWORD) as ann, Client(srv.base, "ben", PASSWORD) as ben:
        await ann.join("mounted")
        await ben.join("mounted")
        sent = await ann.send("mounted", "through the mount")
        async with asyncio.timeout(10):
            async for event in ben.events():
                if event.type == "chat":
                    break
        assert (event.content, event.seq) == ("through the mount", sent.seq)
    # uvicorn re-raises SIGTERM after a graceful shutdown; chinwag's shutdown ran.
    assert await srv.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in srv.log
    assert "?token=" not in srv.log.replace("?token=[redacted]", "")
