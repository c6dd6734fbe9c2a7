"""A real controller stack with one Service of every verdict, and its status served over HTTP.

Used by the statistics/services endpoint tests and the browser test of the
status page: the reconciler, Service cache and ConfigMap store run against
the API emulator, health checks are real HTTP requests to a local backend
(the checker's resolver maps the Services' DNS names to loopback), and the
routes are served by a real aiohttp server in a thread of its own. The
fixtures ``backend`` and ``running`` (import them with ``make_stack`` and
``engine`` from ``tests.kube.conftest``) give a test that stack, started.

The tests of a whole :class:`~dyntoolset.controller.runner.Runner` (the
runner API and the status page in a browser) share :func:`static_tokens`
and :func:`start_runner`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web

from dyntoolset.controller.status import ControllerStatus
from dyntoolset.health import HealthChecker
from dyntoolset.metrics import Metrics
from dyntoolset.pipeline import Engine
from dyntoolset.plugins import load_plugins
from dyntoolset.testing.apiserver import ApiServer
from tests.controller.test_reload import tools
from tests.controller.test_runner_reload import PATIENCE, configmap
from tests.health._servers import Backend, FakeResolver, closed_port, status
from tests.kube._support import service, wait_for
from tests.kube.conftest import Stack, StackFactory

CONFIG = """
health_checks:
  mode: direct
  allowed_networks: ["127.0.0.0/8"]
  cache_ttl: 0.001
  deadline: 10
output: {name: kubernaut-toolset-config, namespace: kubernaut-system}
detectors:
  prometheus: {namespaces: [monitoring], health_check: {timeout: 2, retries: 0}}
  grafana: {required_annotations: ["team=obs"]}
  jaeger: {enabled: false}
"""

#: Markup in an annotation, quoted by the custom detector's invalid reason.
MARKUP = "<script>window.pwned=1</script>"


def prometheus_labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "prometheus"}


@attrs.define
class StatusStack:
    """The stack, its health backend and checker, and the :class:`ControllerStatus` over them."""

    stack: Stack
    backend: Backend
    checker: HealthChecker
    metrics: Metrics
    status: ControllerStatus
    leader: list[bool]


def make_status_stack(
    apiserver: Any, make_stack: StackFactory, backend: Backend, *, start: bool = True
) -> StatusStack:
    """Services of every verdict in the emulator, a stack over them, and its status.

    * ``monitoring/prometheus``: emitted (its backend answers 200);
    * ``monitoring/prometheus-down``: unhealthy (nothing listens on its port);
    * ``default/prometheus``: namespace-filtered (prometheus only looks in ``monitoring``);
    * ``monitoring/grafana``: annotation-filtered (grafana requires ``team=obs``);
    * ``shop/reports``: invalid (its toolset type is markup);
    * ``default/web``: no detector recognises it (not listed).
    """
    apiserver.seed(
        service(
            "prometheus",
            "monitoring",
            labels=prometheus_labels(),
            port=backend.port,
            port_name="web",
        ),
        service(
            "prometheus-down",
            "monitoring",
            labels=prometheus_labels(),
            port=closed_port(),
            port_name="web",
        ),
        service("prometheus", "default", labels=prometheus_labels(), port=9090, port_name="web"),
        service(
            "grafana",
            "monitoring",
            labels={"app.kubernetes.io/name": "grafana"},
            port=3000,
            port_name="http",
        ),
        service(
            "reports",
            "shop",
            annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": MARKUP},
        ),
        service("web", "default"),
    )
    engine = Engine.from_text(CONFIG, "status-test.yaml", load_plugins())
    metrics = Metrics()
    resolver = FakeResolver(
        {
            f"{name}.monitoring.svc.cluster.local": ["127.0.0.1"]
            for name in ("prometheus", "prometheus-down")
        }
    )
    checker = HealthChecker.from_config(engine.config, resolver=resolver, metrics=metrics)
    leader = [True]
    stack = make_stack(
        engine=engine,
        health=checker,
        metrics=metrics,
        is_leader=lambda: leader[0],
        settle=start,
        start=start,
    )
    controller = ControllerStatus(
        stack.reconciler,
        stack.cache,
        metrics=metrics,
        is_leader=lambda: leader[0],
        configuration=lambda: (3, "status-test.yaml"),
    )
    if start:
        wait_for(lambda: stack.reconciler.last_discovery, what="the first discovery")
        # A fixed state for the test: no reconcile of the worker's own from here on
        # (a test runs more with reconcile_now()).
        stack.reconciler.stop(10)
    return StatusStack(stack, backend, checker, metrics, controller, leader)


def healthy_backend() -> Backend:
    return Backend(status(200))


@pytest.fixture
def backend() -> Iterator[Backend]:
    """The health backend of ``monitoring/prometheus``: answers 200."""
    server = healthy_backend()
    yield server
    server.stop()


@pytest.fixture
def running(apiserver: ApiServer, make_stack: StackFactory, backend: Backend) -> StatusStack:
    """:func:`make_status_stack`, started and settled after its first discovery."""
    return make_status_stack(apiserver, make_stack, backend)


# -- a whole Runner ---------------------------------------------------------------------


def static_tokens(directory: Path, *tokens: str, comment: str = "") -> str:
    """A token file accepting ``tokens`` in ``directory`` (``comment``: a ``#`` line
    first), and the ``api:`` line of a configuration that authenticates with it."""
    path = directory / "tokens"
    lines = [f"# {comment}"] if comment else []
    path.write_text("\n".join([*lines, *tokens]) + "\n")
    return f"api: {{auth: {{mode: static, token_file: {path}}}}}\n"


def start_runner(
    apiserver: ApiServer,
    run: Callable[..., Any],
    config: Path,
    text: str,
    services: Sequence[dict[str, Any]],
    written: set[str],
    **options: Any,
) -> Any:
    """A Runner (from the ``run`` fixture, with ``options``) on ``config`` holding ``text``,
    over ``services`` seeded in the emulator, once its first write holds the tools
    ``written``."""
    config.write_text(text)
    apiserver.seed(*services)
    running = run(config_file=str(config), **options)
    wait_for(lambda: tools(configmap(apiserver)) == written, PATIENCE, "the first write")
    return running


Middleware = Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]], Any]


class HttpServer:
    """An aiohttp application serving ``routes`` on loopback, in a thread with its own loop."""

    def __init__(
        self, routes: Sequence[web.RouteDef], middlewares: Sequence[Middleware] = ()
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None
        self.address = asyncio.run_coroutine_threadsafe(
            self._start(routes, middlewares), self.loop
        ).result(10)

    async def _start(
        self, routes: Sequence[web.RouteDef], middlewares: Sequence[Middleware]
    ) -> tuple[str, int]:
        app = web.Application(middlewares=list(middlewares))
        app.add_routes(routes)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def request(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.address, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def get_json(self, path: str) -> tuple[int, str, Any]:
        code, headers, raw = self.request(path)
        return code, headers.get("Content-Type", ""), json.loads(raw)

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def serve(
    routes: Sequence[web.RouteDef], middlewares: Sequence[Middleware] = ()
) -> Iterator[HttpServer]:
    """A generator for fixtures: the server, stopped afterwards."""
    server = HttpServer(routes, middlewares)
    try:
        yield server
    finally:
        server.stop()
