"""Real-browser tests: Playwright for Python driving Debian's Chromium (with no browser download) against a
feedloop served on 127.0.0.1, and a second origin (http://localhost:PORT) for pages that embed a poll.

Screenshots are kept in build/screenshots/ as test artefacts."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.helpers import bare_app

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (`make test` installs it with apt-get as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 820})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.console_errors = errors  # a CSP violation or a script error shows here
    yield page
    context.close()


def _serve(wsgi_app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def served(tmp_path):
    """feedloop (without the encoder) on 127.0.0.1 and an SQLite database of its own: (app, base URL)."""
    app = bare_app({"home": str(tmp_path / "home"), "database_url": f"sqlite:///{tmp_path / 'feedloop.db'}", "env": "test"})
    for url in _serve(app):
        yield app, url
    app.extensions["db_engine"].dispose()


@pytest.fixture
def other_origin(tmp_path):
    """A plain static site on another origin (http://localhost:PORT, where feedloop is http://127.0.0.1:PORT):
    write files into the returned folder and open them at the returned base URL."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "favicon.ico").write_bytes(b"")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://localhost:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
