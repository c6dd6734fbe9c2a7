"""The status page in a real browser: headless Chromium loads ``/status`` from a real
aiohttp server whose API is a real :class:`ControllerStatus` over a controller stack
on the emulator. One load checks the rendered DOM (``--dump-dom``); one signs in
through the token form over the DevTools protocol, as a user would."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dyntoolset.controller.problems import problem
from dyntoolset.controller.status import page_routes, status_routes
from dyntoolset.testing.apiserver import ApiServer
from tests.controller._status_support import (
    MARKUP,
    HttpServer,
    StatusStack,
    healthy_backend,
    make_status_stack,
)
from tests.health._servers import Backend
from tests.kube.conftest import StackFactory, engine, make_stack  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, (
        "chromium is not installed: scripts/test-deps.sh installs it "
        "(sudo apt-get install --no-install-recommends chromium)"
    )
    return found


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = healthy_backend()
    yield server
    server.stop()


@pytest.fixture
def running(apiserver: ApiServer, make_stack: StackFactory, backend: Backend) -> StatusStack:  # noqa: F811
    return make_status_stack(apiserver, make_stack, backend)


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (their fetches are waited for by virtual time)."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def element(dom: str, tag: str, ident: str) -> str:
    """The opening tag of the element with id ``ident``."""
    match = re.search(rf"<{tag}\b[^>]*\bid=\"{ident}\"[^>]*>", dom)
    assert match, f"no <{tag} id={ident}> in the page"
    return match.group(0)


def rows(dom: str, table: str) -> list[tuple[bool, list[str]]]:
    """``(visible, cells' text)`` of each body row of table ``table`` (unescaped)."""
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert body, f"no table {table}"
    return [
        (
            "hidden" not in attributes,
            [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)],
        )
        for attributes, cells in re.findall(r"<tr([^>]*)>(.*?)</tr>", body.group(1), re.S)
    ]


def test_the_page_shows_statistics_toolsets_and_every_verdict_escaped(
    chromium: str, running: StatusStack, tmp_path: Path
) -> None:
    server = HttpServer(status_routes(running.status) + page_routes())
    try:
        # With a search in the address: the table holds every row, and shows the matches.
        url = server.url + "/status?q=monitoring%2Fprometheus"
        dom = dump_dom(chromium, url, tmp_path / "profile")
    finally:
        server.stop()
    assert "hidden" not in element(dom, "main", "content"), dom
    assert "hidden" in element(dom, "section", "auth")
    # The summary and the detectors.
    assert "<dt>services discovered</dt><dd>2</dd>" in dom
    assert "<dt>configuration</dt><dd>generation 3 from status-test.yaml</dd>" in dom
    detectors = [cells for _, cells in rows(dom, "detectors")]
    assert ["prometheus", "yes", "2", "50 %"] in detectors
    assert ["jaeger", "no", "0", "100 %"] in detectors
    # The published toolsets.
    port = running.backend.port
    assert rows(dom, "toolsets") == [
        (
            True,
            [
                "monitoring/prometheus",
                "prometheus",
                "prometheus/metrics",
                f"http://prometheus.monitoring.svc.cluster.local:{port}",
            ],
        )
    ]
    table = rows(dom, "services")
    services = {cells[0]: cells for _, cells in table}
    assert sorted(services) == [
        "default/prometheus",
        "monitoring/grafana",
        "monitoring/prometheus",
        "monitoring/prometheus-down",
        "shop/reports",
    ]
    assert [cells[0] for visible, cells in table if visible] == [
        "monitoring/prometheus",
        "monitoring/prometheus-down",
    ]
    assert services["default/prometheus"][1:4] == [
        "prometheus",
        "namespace_filtered",
        "matches prometheus, but namespace 'default' is not allowed by namespaces ['monitoring']",
    ]
    assert services["monitoring/grafana"][2] == "annotation_filtered"
    assert services["monitoring/prometheus"][2] == "emitted"
    assert services["monitoring/prometheus-down"][2] == "unhealthy"
    assert services["monitoring/prometheus-down"][5].startswith("connection_refused at ")
    # The markup from the annotation is text: escaped in the DOM, shown as written,
    # and no script element came to life besides the page's own.
    invalid = services["shop/reports"]
    assert invalid[2] == "invalid"
    assert f"got {MARKUP!r}" in invalid[3]
    assert html.escape(MARKUP, quote=False) in dom
    assert MARKUP not in dom
    assert dom.count("<script") == 1


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_t_only(authorizations: list[str | None]) -> Any:
    """401 without a token, 403 for any token but ``t`` (what the page must tell apart);
    records the ``Authorization`` header of every API request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            given = request.headers.get("Authorization")
            authorizations.append(given)
            if given is None:
                return problem(request, 401, "Unauthorized", "a bearer token is required")
            if given != "Bearer t":
                return problem(
                    request, 403, "Forbidden", "this token may not get /api/v1/statistics"
                )
        return await handler(request)

    return middleware


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: Run in the page: wait for a condition, fill in the token form, wait again.
SIGN_IN = """
(async () => {
  const until = async (test) => {
    // The page may still be loading when this starts: a missing element is "not yet".
    const ok = () => { try { return test(); } catch (e) { return false; } };
    for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
    if (!ok()) throw new Error("timed out: " + test);
  };
  const $ = (id) => document.getElementById(id);
  const submit = (token) => { $("token").value = token; $("auth-form").requestSubmit(); };
  await until(() => !$("auth").hidden);
  const asked = $("auth-message").textContent;
  submit("nope");
  await until(() => !$("problem").hidden);
  const refused = $("problem").textContent;
  submit("t");
  await until(() => !$("content").hidden);
  return {
    asked, refused,
    stored: sessionStorage.getItem("dyntoolset.token"),
    problemHidden: $("problem").hidden,
    authHidden: $("auth").hidden,
    rows: Array.from($("services").tBodies[0].rows, (r) => r.cells[0].textContent),
  };
})()
"""


async def evaluate_in_page(devtools: int, expression: str) -> Any:
    """``expression`` evaluated in the browser's page over the DevTools protocol,
    once the page has loaded."""
    async with aiohttp.ClientSession() as session:
        for _ in range(400):  # the browser opens its debugging port shortly after start
            try:
                async with session.get(f"http://127.0.0.1:{devtools}/json/list") as response:
                    pages = [t for t in await response.json() if t["type"] == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("Chromium's DevTools endpoint never listed the page")
        async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            calls = 0

            async def evaluate(text: str) -> dict[str, Any]:
                nonlocal calls
                calls += 1
                params = {"expression": text, "awaitPromise": True, "returnByValue": True}
                await ws.send_json({"id": calls, "method": "Runtime.evaluate", "params": params})
                while True:
                    message: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), 60)
                    if message.get("id") == calls:
                        return message

            loaded = "location.pathname === '/status' && document.readyState === 'complete'"
            for _ in range(400):
                answer = await evaluate(loaded)
                if answer.get("result", {}).get("result", {}).get("value") is True:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the page did not load: {answer}")
            message = await evaluate(expression)
    assert "result" in message, message
    result = message["result"]
    assert "exceptionDetails" not in result, result["exceptionDetails"]
    return result["result"]["value"]


def test_the_token_is_asked_for_kept_in_the_tab_and_sent_as_bearer(
    chromium: str, running: StatusStack, tmp_path: Path
) -> None:
    authorizations: list[str | None] = []
    server = HttpServer(
        status_routes(running.status) + page_routes(), [token_t_only(authorizations)]
    )
    devtools = free_port()
    browser = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--remote-debugging-port={devtools}",
            server.url + "/status",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        seen = asyncio.run(evaluate_in_page(devtools, SIGN_IN))
    finally:
        browser.terminate()
        browser.wait(30)
        server.stop()
    assert seen["asked"] == "401 a bearer token is required"
    assert seen["refused"] == "403 this token may not get /api/v1/statistics"
    assert seen["stored"] == "t"
    assert (seen["problemHidden"], seen["authHidden"]) == (True, True)
    assert "shop/reports" in seen["rows"]
    # No token, then each token as typed, as a bearer token on every API call.
    assert set(authorizations) == {None, "Bearer nope", "Bearer t"}
    assert authorizations[0] is None
