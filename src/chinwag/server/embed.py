"""chinwag inside another ASGI app: mounted under a prefix, its start-up and
shutdown run inside the host's lifespan (a mounted app gets no lifespan events of
its own, so without this its database and broker would never start)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette

from chinwag.server.app import create_app
from chinwag.settings import Settings, load_settings


@contextlib.asynccontextmanager
async def chinwag_lifespan(chat: FastAPI) -> AsyncIterator[None]:
    """chinwag's start-up and shutdown, for a host that writes its own lifespan:
    ``async with chinwag_lifespan(chat): yield``."""
    async with chat.router.lifespan_context(chat):
        yield


def mount_chinwag(
    host: Starlette, path: str = "/chat", settings: Settings | None = None
) -> FastAPI:
    """Mount chinwag at ``path`` in ``host`` and chain its start-up and shutdown
    around the host's own lifespan (chinwag starts first and stops last, so the
    host's start-up code may already use it). Returns the chinwag app."""
    chat = create_app(settings or load_settings())
    host.mount(path, chat)
    host_lifespan = host.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with chinwag_lifespan(chat), host_lifespan(app) as state:
            yield state

    host.router.lifespan_context = lifespan
    return chat


__all__ = ["chinwag_lifespan", "mount_chinwag"]
