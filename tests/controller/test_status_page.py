"""The status page in a real browser: headless Chromium loads ``/status`` from a real
aiohttp server whose API is a real :class:`ControllerStatus` over a controller stack
on the emulator, and the rendered DOM is checked (``--dump-dom``)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from dyntoolset.controller.probes import problem
from dyntoolset.controller.status import page_routes, status_routes
from dyntoolset.testing.apiserver import ApiServer
from tests.controller._status_support import (
    MARKUP,
    HttpServer,
    StatusStack,
    healthy_backend,
    make_status_stack,
    serve,
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


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The API server's authentication as the page meets it: a 401 problem without a token."""
    if request.path.startswith("/api/") and request.headers.get("Authorization") != "Bearer t":
        response = problem(
            401, "Unauthorized", "a bearer token is required (Authorization: Bearer <token>)"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="dyntoolset"'
        return response
    return await handler(request)


def test_with_auth_the_page_asks_for_a_token_and_shows_the_problem(
    chromium: str, running: StatusStack, tmp_path: Path
) -> None:
    servers = serve(status_routes(running.status) + page_routes(), [require_token])
    server = next(servers)
    try:
        dom = dump_dom(chromium, server.url + "/status", tmp_path / "profile")
    finally:
        servers.close()
    assert "hidden" not in element(dom, "section", "auth"), dom
    assert "hidden" in element(dom, "main", "content")
    assert "401 a bearer token is required (Authorization: Bearer &lt;token&gt;)" in element_text(
        dom, "auth-message"
    )


def element_text(dom: str, ident: str) -> str:
    match = re.search(rf'id="{ident}"[^>]*>(.*?)<', dom, re.S)
    assert match, f"no element {ident}"
    return match.group(1)
