"""The web app (``/``), the admin page (``/admin``), their static files, and the
API docs (``/docs``, ``/redoc``) served from the package: nothing loads from
another host, so all of it works offline.

The app's pages send a strict Content-Security-Policy: scripts and styles only
from this origin, no inline script, no plugins, no framing. Message content is
rendered through a markdown renderer and DOMPurify in the page, and this policy is
the second wall should anything get past them."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(str(files("chinwag.server").joinpath("static")))
STATIC_URL = "/static"

APP_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_PAGE_HEADERS = {
    "Content-Security-Policy": APP_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/")
async def web_app() -> FileResponse:
    return _page("index.html")


@router.get("/admin")
async def admin_page() -> FileResponse:
    """The page itself is public (it holds no data); everything it shows comes from
    admin-only endpoints, and it tells a non-admin they are refused."""
    return _page("admin.html")


def mount(app: FastAPI) -> None:
    """Add the pages, the static files and the offline API docs to ``app`` (created
    with ``docs_url=None, redoc_url=None``)."""
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    docs = f"{STATIC_URL}/docs"
    oauth_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            oauth2_redirect_url=oauth_redirect,
            swagger_js_url=f"{docs}/swagger-ui-bundle.js",
            swagger_css_url=f"{docs}/swagger-ui.css",
            swagger_favicon_url=f"{docs}/favicon-32x32.png",
        )

    @app.get(oauth_redirect, include_in_schema=False)
    async def swagger_oauth_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            redoc_js_url=f"{docs}/redoc.standalone.js",
            redoc_favicon_url=f"{docs}/favicon-32x32.png",
            with_google_fonts=False,
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return FileResponse(STATIC_DIR / "docs" / "favicon-32x32.png", media_type="image/png")
