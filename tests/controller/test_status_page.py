"""The status page in a real browser (headless Chromium).

Against a real in-process :class:`~dyntoolset.controller.runner.Runner` on the
emulator, in both auth modes it can serve the page in: ``none`` (the page shows
the data at once, and without JavaScript points to JSON that opens as it is) and
``static`` (the page asks for the token, shows the refusal, then the data).
Against a controller stack holding a Service of every verdict (one with markup in
an annotation): the whole page, escaped; and a 403 shown as the problem's detail.
The signing in is driven over the DevTools protocol, as a user would.
"""

from __future__ import annotations

import asyncio
import html
import http.client
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    start_runner,
    static_tokens,
)

# ``run`` is that module's fixture: a Runner in a thread, stopped at the end.
from tests.controller.test_runner_reload import run  # noqa: F401
from tests.kube._support import prometheus
from tests.kube.conftest import engine, make_stack  # noqa: F401 - fixtures of ``running``

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, (
        "chromium is not installed: scripts/test-deps.sh installs it "
        "(sudo apt-get install --no-install-recommends chromium)"
    )
    return found


def headless(chromium: str, profile: Path, *flags: str) -> list[str]:
    """The command line of a headless Chromium with a profile of its own, then ``flags``.

    No sandbox (tests may run as root in a container), no GPU, no /dev/shm
    (small in containers), no first-run or default-browser prompts.
    """
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        *flags,
    ]


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (their fetches are waited for by virtual time)."""
    result = subprocess.run(
        headless(chromium, profile, "--virtual-time-budget=10000", "--dump-dom", url),
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
    assert (
        "<dt>configuration reloads</dt><dd>0 applied, 0 unchanged, 0 failed; none yet</dd>" in dom
    )
    assert "hidden" in element(dom, "p", "reload-error")
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


#: Run in the page: wait for the sign-in form, submit a refused token, wait for the
#: refusal (a 401 asks again, anything else is shown as the problem), submit the
#: accepted token, wait for the data.
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
  const cells = (table) => Array.from($(table).tBodies[0].rows,
    (r) => Array.from(r.cells, (c) => c.textContent));
  await until(() => !$("auth").hidden && $("content").hidden);
  const asked = $("auth-message").textContent;
  submit(REFUSED);
  await until(() => !$("problem").hidden || $("auth-message").textContent !== asked);
  const refusedIn = $("problem").hidden ? "auth" : "problem";
  const refused = $(refusedIn === "auth" ? "auth-message" : "problem").textContent;
  submit(ACCEPTED);
  await until(() => !$("content").hidden);
  return {
    asked, refused, refusedIn,
    stored: sessionStorage.getItem("dyntoolset.token"),
    problemHidden: $("problem").hidden,
    authHidden: $("auth").hidden,
    toolsets: cells("toolsets"),
    services: cells("services"),
  };
})()
"""


def sign_in(refused: str, accepted: str) -> str:
    """:data:`SIGN_IN` with its two tokens."""
    return SIGN_IN.replace("REFUSED", json.dumps(refused)).replace("ACCEPTED", json.dumps(accepted))


async def evaluate_in_page(devtools: int, expression: str, path: str = "/status") -> Any:
    """``expression`` evaluated in the browser's page over the DevTools protocol,
    once the page at ``path`` has loaded (this works with the page's scripts off too)."""
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

            loaded = (
                f"location.pathname === {json.dumps(path)} && document.readyState === 'complete'"
            )
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


def in_browser(
    chromium: str, url: str, profile: Path, expression: str, *, scripts: bool = True
) -> Any:
    """Open ``url`` in headless Chromium and evaluate ``expression`` in the loaded page;
    ``scripts=False``: with JavaScript turned off for the page (as a user can)."""
    devtools = free_port()
    browser = subprocess.Popen(
        headless(
            chromium,
            profile,
            f"--remote-debugging-port={devtools}",
            *(() if scripts else ("--blink-settings=scriptEnabled=false",)),
            url,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return asyncio.run(evaluate_in_page(devtools, expression, urlsplit(url).path))
    finally:
        browser.terminate()
        browser.wait(30)


def test_a_forbidden_token_shows_the_problem_and_every_token_is_sent_as_bearer(
    chromium: str, running: StatusStack, tmp_path: Path
) -> None:
    # A 403 cannot come from a static token (any accepted token may read): a
    # middleware stands in for RBAC refusing a valid token.
    authorizations: list[str | None] = []
    server = HttpServer(
        status_routes(running.status) + page_routes(), [token_t_only(authorizations)]
    )
    try:
        seen = in_browser(
            chromium, server.url + "/status", tmp_path / "profile", sign_in("nope", "t")
        )
    finally:
        server.stop()
    assert seen["asked"] == "401 a bearer token is required"
    assert (seen["refusedIn"], seen["refused"]) == (
        "problem",
        "403 this token may not get /api/v1/statistics",
    )
    assert seen["stored"] == "t"
    assert (seen["problemHidden"], seen["authHidden"]) == (True, True)
    assert "shop/reports" in [cells[0] for cells in seen["services"]]
    # No token, then each token as typed, as a bearer token on every API call.
    assert set(authorizations) == {None, "Bearer nope", "Bearer t"}
    assert authorizations[0] is None


# -- a real controller ------------------------------------------------------------------

#: Health checks off (the Services' names do not resolve here); Prometheus only in
#: ``monitoring``, so ``default/prometheus`` is namespace-filtered.
RUNNER_CONFIG = """\
health_checks: {enabled: false}
detectors:
  prometheus: {namespaces: [monitoring]}
"""

#: What a browser with JavaScript off shows of the page.
NO_SCRIPT = """({
  contentHidden: document.getElementById("content").hidden,
  cells: document.querySelectorAll("td").length,
  noScript: document.getElementById("no-script").innerText,
  links: Array.from(document.querySelectorAll("#no-script a"), (a) => a.getAttribute("href")),
})"""

FILTERED_REASON = (
    "matches prometheus, but namespace 'default' is not allowed by namespaces ['monitoring']"
)

TOKEN = "page-t0ken"


def start_controller(apiserver: ApiServer, run: Any, config: Path, api: str) -> Any:  # noqa: F811
    """A Runner with ``api`` (a YAML line) serving two Prometheus Services, once it wrote."""
    return start_runner(
        apiserver,
        run,
        config,
        RUNNER_CONFIG + api,
        (prometheus(), prometheus(namespace="default")),
        {"prometheus.monitoring"},
        config_poll_interval=3600.0,
    )


def post(address: tuple[str, int], path: str) -> int:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("POST", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_without_auth_the_page_shows_the_controller_at_once_and_without_javascript_links_json(
    chromium: str,
    apiserver: ApiServer,
    run: Any,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    running = start_controller(apiserver, run, config, "api: {auth: {mode: none}}\n")
    host, port = running.address()
    url = f"http://{host}:{port}"
    # A broken edit, reloaded through the API: refused, and the page says so.
    config.write_text("detectors: {prometheus: {priority: many}}\n")
    assert post((host, port), "/api/v1/config/reload") == 422

    dom = dump_dom(chromium, url + "/status", tmp_path / "profile")
    assert "hidden" not in element(dom, "main", "content"), dom
    assert "hidden" in element(dom, "section", "auth")
    assert rows(dom, "toolsets") == [
        (
            True,
            [
                "monitoring/prometheus",
                "prometheus",
                "prometheus/metrics",
                "http://prometheus.monitoring.svc.cluster.local:9090",
            ],
        )
    ]
    services = {cells[0]: cells for _, cells in rows(dom, "services")}
    assert services["default/prometheus"][1:4] == [
        "prometheus",
        "namespace_filtered",
        FILTERED_REASON,
    ]
    assert services["monitoring/prometheus"][2] == "emitted"
    assert f"<dt>configuration</dt><dd>generation 1 from {config}</dd>" in dom
    reloads = re.search(r"<dt>configuration reloads</dt><dd>(.*?)</dd>", dom)
    assert reloads, dom
    assert re.fullmatch(
        r"0 applied, 0 unchanged, 1 failed; last: failure \(api\) at \S+Z", reloads.group(1)
    )
    assert "hidden" not in element(dom, "p", "reload-error")
    assert "expected int, got" in html.unescape(
        re.search(r'<p id="reload-error"[^>]*>(.*?)</p>', dom, re.S).group(1)  # type: ignore[union-attr]
    )

    # Without JavaScript: the page says so and links the JSON documents, which open
    # as they are in the same browser, reasons included.
    bare = in_browser(chromium, url + "/status", tmp_path / "bare", NO_SCRIPT, scripts=False)
    assert bare["contentHidden"] is True
    assert bare["cells"] == 0  # no data without the script
    assert "This page needs JavaScript" in bare["noScript"]
    assert bare["links"] == ["/api/v1/statistics", "/api/v1/services"]
    shown = in_browser(
        chromium,
        url + bare["links"][1],
        tmp_path / "json",
        "document.body.innerText",
        scripts=False,
    )
    document = json.loads(shown)
    filtered = {(s["namespace"], s["name"]): s for s in document["services"]}
    assert filtered["default", "prometheus"]["verdict"] == "namespace_filtered"
    assert filtered["default", "prometheus"]["detail"] == FILTERED_REASON
    assert running.stop() == 0


def test_with_static_tokens_the_page_asks_refuses_a_wrong_token_then_shows_the_controller(
    chromium: str,
    apiserver: ApiServer,
    run: Any,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    running = start_controller(
        apiserver, run, tmp_path / "config.yaml", static_tokens(tmp_path, TOKEN)
    )
    host, port = running.address()
    seen = in_browser(
        chromium, f"http://{host}:{port}/status", tmp_path / "profile", sign_in("wrong", TOKEN)
    )
    assert seen["asked"] == "401 this endpoint needs an Authorization: Bearer token"
    assert (seen["refusedIn"], seen["refused"]) == ("auth", "401 the bearer token is not accepted")
    assert seen["stored"] == TOKEN
    assert (seen["problemHidden"], seen["authHidden"]) == (True, True)
    assert seen["toolsets"] == [
        [
            "monitoring/prometheus",
            "prometheus",
            "prometheus/metrics",
            "http://prometheus.monitoring.svc.cluster.local:9090",
        ]
    ]
    services = {cells[0]: cells for cells in seen["services"]}
    assert services["default/prometheus"][1:4] == [
        "prometheus",
        "namespace_filtered",
        FILTERED_REASON,
    ]
    assert running.stop() == 0
