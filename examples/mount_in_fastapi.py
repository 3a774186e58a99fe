"""chinwag inside an existing FastAPI app, under /chat.

    pip install chinwag
    python examples/mount_in_fastapi.py          # then open http://127.0.0.1:8000/

The host keeps its own routes and lifespan; chinwag answers under /chat (its
WebSocket at /chat/api/v1/ws/ws, its HTTP API at /chat/api/v1/...). Settings come
from the environment as for `chinwag serve` (DATABASE_URL, JWT_SECRET, ...).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from chinwag.server.embed import mount_chinwag
from chinwag.server.logs import configure_logging
from chinwag.settings import load_settings


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.started = True  # the host's own start-up, run after chinwag's
    yield


app = FastAPI(title="My product", lifespan=lifespan)


@app.get("/")
async def home() -> dict[str, object]:
    return {"app": "my product", "started": app.state.started, "chat": "/chat"}


settings = load_settings()
chat = mount_chinwag(app, "/chat", settings)

if __name__ == "__main__":
    # chinwag's logging keeps ?token= out of uvicorn's access log.
    configure_logging(settings.log_level, settings.log_format, settings.debug)
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        log_config=None,
    )
