"""Swagger UI in headless Chromium: open /docs, authorise, try the digits route, see the label."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import FloatRect, Page, Route, sync_playwright

from support.live_gateway import Digits, LiveServer

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000  # a hang guard: every step waits on what the page shows

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def page(tmp_path: Path, live_server: LiveServer) -> Iterator[Page]:
    """Chromium with a fresh profile, allowed to talk to the live server only.

    Playwright drives Debian's chromium; it never downloads a browser of its own. Blocking
    every other host proves Swagger UI works offline (its assets come from our package).
    """
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it"
    outside: list[str] = []
    errors: list[str] = []
    server_host = urlsplit(live_server.base_url).netloc

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).netloc == server_host:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            context.route("**/*", only_loopback)
            opened = context.new_page()
            opened.on("pageerror", lambda error: errors.append(str(error)))
            yield opened
        finally:
            context.close()
    assert outside == [], "Swagger UI tried to leave the server"
    assert errors == [], "Swagger UI raised JavaScript errors"


def test_try_it_out_on_the_digits_route(
    page: Page, live_server: LiveServer, digits: Digits, tmp_path: Path
) -> None:
    page.goto(f"{live_server.base_url}/docs")
    # Authorise first: the typed route needs models:infer or models:infer:digits.
    page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").first.fill(live_server.token)
    dialog.locator(".auth-btn-wrapper button.authorize").click()
    dialog.locator(".auth-btn-wrapper button.btn-done").click()
    dialog.wait_for(state="detached")

    operation = page.locator("#operations-digits-predict_digits")
    operation.locator(".opblock-summary").click()
    try_it_out = operation.get_by_role("button", name="Try it out")
    if try_it_out.count():  # tryItOutEnabled may already have switched it on
        try_it_out.click()
    body = operation.locator("textarea.body-param__text")
    # The generated example (zeros) is there; replace it with one held-out digit.
    assert '"pixels"' in body.input_value()
    body.fill(json.dumps({"inputs": {"pixels": [digits.pixels[0]]}}))
    operation.get_by_role("button", name="Execute").click()

    live = operation.locator(".live-responses-table")
    status = live.locator(".response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    answer = json.loads(live.locator(".response-col_description pre").first.inner_text())
    assert answer["outputs"]["label"] == [digits.labels[0]]

    # The picture for docs/: from the route's header down to the server's answer.
    top, bottom = operation.bounding_box(), live.bounding_box()
    assert top is not None
    assert bottom is not None
    scrolled = float(page.evaluate("window.scrollY"))  # boxes are relative to the viewport
    clip: FloatRect = {
        "x": top["x"],
        "y": top["y"] + scrolled,
        "width": top["width"],
        "height": bottom["y"] + bottom["height"] - top["y"],
    }
    shot = tmp_path / "swagger.png"
    page.screenshot(path=shot, clip=clip, full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
