"""Headless Chromium for the browser tests: Debian's ``chromium`` (installed by
``scripts/browser-test-deps.sh``) driven by Playwright."""

from __future__ import annotations

import shutil

import pytest

#: Flags of every test browser: no sandbox (root in CI), no GPU, no request of its own
#: (background networking, updates, sync) so that a test can record every request a page makes.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run bash scripts/browser-test-deps.sh")
    return path
