"""Headless Chromium driven by Playwright: Debian's `chromium` package (`make tools`
installs it), given to Playwright as its executable, so no browser is ever downloaded.
The flags keep it off the network: this machine has none, and Chromium would otherwise
keep trying Google's hosts."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

FLAGS = [
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots are kept for people to look at: under build/ (ignored by git), or where
# LLMG_TEST_ARTIFACTS says.
ARTIFACTS = Path(os.environ.get("LLMG_TEST_ARTIFACTS", "build/test-artifacts"))


# Resolves with the page's first contentful paint (ms since navigation), once it happened.
FIRST_PAINT = """() => new Promise(done => new PerformanceObserver((list, observer) => {
    const entry = list.getEntries().find(e => e.name === 'first-contentful-paint');
    if (entry) { observer.disconnect(); done(entry.startTime); }
}).observe({type: 'paint', buffered: true}))"""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(executable).exists(), "chromium is not installed: run `make tools`"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


def artifact(name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / name)
