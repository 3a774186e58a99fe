"""/docs and /redoc render with no network beyond this server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Route, expect

NewPage = Callable[..., Awaitable[Any]]


async def test_docs_and_redoc_render_with_every_other_host_unreachable(
    start_server: Any, new_page: NewPage
) -> None:
    srv = await start_server()
    page = await new_page(srv.base)
    outside: list[str] = []

    async def only_this_server(route: Route) -> None:
        if route.request.url.startswith(srv.base):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_this_server)
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("chinwag")
    await expect(page.get_by_text("/api/v1/ws/rooms").first).to_be_visible()
    await page.goto("/redoc")
    await expect(page.get_by_role("heading", name="chinwag").first).to_be_visible()
    await expect(page.get_by_text("/api/v1/admin/users").first).to_be_attached()
    assert outside == []
