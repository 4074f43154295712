"""A real browser (Debian's Chromium driven by Playwright) and the managers' gateway, for tests.

Use the fixtures from a test module with `from tests.browser import browser, gateway, page`
(pytest finds fixtures imported into a module). Where Chromium is missing the browser tests are
skipped with the reason, and a loud line on stderr says so: they never pass silently.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.prefect_harness import ROOT, free_port

if TYPE_CHECKING:
    from tests.prefect_harness import PrefectServer

CHROMIUM = os.environ.get("CASECONF_CHROMIUM", "/usr/bin/chromium")
#: Root in a sandbox without a GPU; no WebGL (Prefect's run graph falls back to a 2D canvas that
#: looks the same: with WebGL, Chromium's GPU process emulated it in software, 15.5 s of CPU in a
#: 30 s walk of three forms, 1.5 s without); and nothing of Chromium's own reaching for the
#: network, which this machine refuses (many connections at a time, each a little CPU for nothing).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-3d-apis",
    "--disable-webgl",
    "--disable-accelerated-2d-canvas",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
#: Where the browser tests put their screenshots: a temporary folder, so a test run leaves the
#: tree as it was; `make screenshots` sets CASECONF_SCREENSHOTS to docs/screenshots to refresh the
#: pictures the docs show (and then pictures each form whole, which costs Chromium seconds each).
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
SCREENSHOTS = Path(
    os.environ.get("CASECONF_SCREENSHOTS") or tempfile.mkdtemp(prefix="caseconf-screenshots-")
).resolve()
REFRESHING_DOCS = SCREENSHOTS == DOCS_SCREENSHOTS


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    return None


class Gateway:
    """`python -m deployments.gateway` in front of a Prefect server, as `make run` starts it."""

    def __init__(self, upstream: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.upstream = upstream
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "deployments.gateway"),
                *("--upstream", self.upstream, "--port", str(self.port)),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the gateway exited; see {self.log}") from None
                time.sleep(0.2)
        raise RuntimeError("the gateway did not answer within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def gateway(prefect_server: "PrefectServer", tmp_root: Path) -> Iterator[Gateway]:
    """The managers' gateway in front of the session's real Prefect server."""
    running = Gateway(prefect_server.api_url.removesuffix("/api"), tmp_root / "gateway.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and Prefect's sync calls (run_deployment, ...) then return coroutines in every
# test that follows in the same worker.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium; skipped loudly where it cannot run."""
    missing = chromium_missing()
    if missing:
        sys.stderr.write(f"\n!!! BROWSER TESTS SKIPPED: {missing} !!!\n")
        pytest.skip(f"browser tests need Chromium: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context) at a desktop size."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()
