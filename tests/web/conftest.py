"""Browser fixtures: Debian's Chromium driven by Playwright (its own browser download
is not used). A missing Chromium or Playwright skips these tests, except in CI
(``CI=true``), where it fails them."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import in_ci

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing(what: str) -> None:
    if in_ci():
        pytest.fail(f"{what} (required in CI)")
    pytest.skip(what)


def _chromium_present() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    if not _chromium_present():
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def new_page(browser: Any) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await new_page(base_url)``: a page in a browser context of its own (its own
    storage, so each is a different person). Page errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    async def make(base_url: str, **options: Any) -> Any:
        context = await browser.new_context(
            base_url=base_url,
            accept_downloads=True,
            viewport={"width": 1200, "height": 800},
            **options,
        )
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        return page

    yield make
    for context in contexts:
        await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
