"""The whole HTTP API of a running controller (in process, against the emulator).

The runner wires the parts the unit tests check separately: static-token
authentication in front of the status endpoints and the reload, the real
:class:`~dyntoolset.controller.reload.Reloader` behind ``POST
/api/v1/config/reload``, the status page open, and a change of ``api`` in a
reload reported as needing a restart.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import threading
from pathlib import Path
from typing import Any

from dyntoolset.controller.api import SHUTDOWN_RETRY_AFTER
from dyntoolset.testing.apiserver import ApiServer
from tests.controller._status_support import start_runner, static_tokens
from tests.controller.test_reload import BASE, CHANGED, grafana, tools

# ``run`` is that module's fixture: a Runner in a thread, stopped at the end.
from tests.controller.test_runner_reload import PATIENCE, configmap, run  # noqa: F401
from tests.kube._support import prometheus, wait_for

TOKEN = "s3cret-token"
#: The Services of every test here, and the tools the first write holds.
SERVICES = (prometheus(), grafana())
WRITTEN = {"prometheus.monitoring", "grafana.monitoring"}


def request(
    address: tuple[str, int], method: str, path: str, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read().decode()
        kind = response.headers.get("Content-Type", "")
        document = json.loads(body) if "json" in kind else body
        return response.status, dict(response.headers), document
    finally:
        conn.close()


def test_the_running_api_authenticates_reports_and_reloads(
    apiserver: ApiServer,
    tmp_path: Path,
    run: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    api = static_tokens(tmp_path, TOKEN, comment="the operators")
    config = tmp_path / "config.yaml"
    running = start_runner(
        apiserver, run, config, BASE + api, SERVICES, WRITTEN, config_poll_interval=3600.0
    )
    address = running.address()

    code, headers, problem = request(address, "GET", "/api/v1/statistics")
    assert code == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert problem["status"] == 401
    code, _, problem = request(address, "GET", "/api/v1/statistics", token="wrong")
    assert code == 401

    code, _, statistics = request(address, "GET", "/api/v1/statistics", token=TOKEN)
    assert code == 200
    assert statistics["services_discovered"] == 2
    assert statistics["detectors"]["grafana"]["enabled"] is True
    assert statistics["config"]["generation"] == 1
    assert statistics["synced"] is True and statistics["is_leader"] is True
    code, _, services = request(address, "GET", "/api/v1/services?detector=grafana", token=TOKEN)
    assert code == 200
    assert [(s["name"], s["verdict"]) for s in services["services"]] == [("grafana", "emitted")]

    code, _, page = request(address, "GET", "/status")  # open: the page holds no data
    assert code == 200 and "<html" in page.lower()

    # The reload endpoint runs the real Reloader: the file changed, the answer
    # has the requirements' shape, and the ConfigMap follows.
    config.write_text(CHANGED + api)
    code, _, report = request(address, "POST", "/api/v1/config/reload", token=TOKEN)
    assert code == 200, report
    assert set(report) == {"status", "detectors_enabled", "detectors_disabled", "reload_time"}
    assert (report["status"], report["detectors_disabled"]) == ("success", 1)
    wait_for(
        lambda: tools(configmap(apiserver)) == {"prometheus.monitoring"}, PATIENCE, "the reload"
    )
    statistics = request(address, "GET", "/api/v1/statistics", token=TOKEN)[2]
    assert statistics["config"]["generation"] == 2
    assert statistics["detectors"]["grafana"]["enabled"] is False

    # An invalid configuration: 422 with every problem, the old one stays.
    config.write_text(CHANGED.replace("resync_interval: 120", "resync_interval: -1") + api)
    code, _, problem = request(address, "POST", "/api/v1/config/reload", token=TOKEN)
    assert code == 422
    assert any(e.startswith("$.resync_interval:") for e in problem["errors"])
    config_state = request(address, "GET", "/api/v1/statistics", token=TOKEN)[2]["config"]
    assert config_state["generation"] == 2
    # The statistics show the reloads: counted by result, and how the last one ended.
    assert config_state["reloads"] == {"success": 1, "unchanged": 0, "failure": 1}
    last = config_state["last_reload"]
    assert (last["result"], last["trigger"]) == ("failure", "api")
    assert last["problems"] == problem["errors"]

    # The api section is set up once: a change needs a restart, and the
    # running authentication stays (the old token still works).
    config.write_text(CHANGED + "api: {auth: {mode: kubernetes}}\n")
    code, _, report = request(address, "POST", "/api/v1/config/reload", token=TOKEN)
    assert code == 200 and report["status"] == "unchanged"
    (pending,) = running.events("config_restart_required")
    assert any(line.startswith("api:") for line in pending["settings"])
    assert request(address, "GET", "/api/v1/statistics", token=TOKEN)[0] == 200
    assert running.stop() == 0


def writer_of(fifo: Path) -> int | None:
    """The FIFO opened for writing once a reader has opened it (``None`` before)."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader yet
            return None
        raise


def test_shutdown_answers_the_reload_in_flight_and_refuses_new_requests(
    apiserver: ApiServer,
    tmp_path: Path,
    run: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    api = static_tokens(tmp_path, TOKEN)
    config = tmp_path / "config.yaml"
    running = start_runner(
        apiserver,
        run,
        config,
        BASE + api,
        SERVICES,
        WRITTEN,
        config_watch=False,
        leader_elect=True,
    )
    address, metrics_address = running.address(), running.address("metrics")

    # The configuration file becomes a FIFO: the reload's read blocks until the
    # test writes, and the test knows the read began when its writer can open.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    os.replace(fifo, config)
    answers: list[tuple[int, dict[str, str], Any]] = []
    flight = threading.Thread(
        target=lambda: answers.append(
            request(address, "POST", "/api/v1/config/reload", token=TOKEN)
        ),
        daemon=True,
    )
    flight.start()
    writer = wait_for(lambda: writer_of(config), PATIENCE, "the reload to read the file")
    try:
        running.runner.request_stop()  # what SIGTERM does
        # The reconcile, the watches and the Lease are done; the listeners wait for the reload.
        wait_for(lambda: running.events("http_draining"), PATIENCE, "the HTTP drain")
        code, headers, problem = request(address, "GET", "/api/v1/statistics", token=TOKEN)
        assert code == 503 and headers["Content-Type"].startswith("application/problem+json")
        assert headers["Retry-After"] == str(SHUTDOWN_RETRY_AFTER)
        assert "shutting down" in problem["detail"]
        assert request(address, "GET", "/health")[0] == 200
        assert request(address, "GET", "/ready")[0] == 503
        code, _, metrics = request(metrics_address, "GET", "/metrics")
        assert code == 200 and 'code="503"' in metrics
        assert running.events("stopped") == []
        os.write(writer, (CHANGED + api).encode())
    finally:
        os.close(writer)
    flight.join(PATIENCE)
    ((code, _, report),) = answers
    assert code == 200, report
    assert (report["status"], report["detectors_disabled"]) == ("success", 1)
    assert running.stop() == 0
    events = [
        e
        for e in (
            r.dyntoolset.get("event") for r in running.caplog.records if hasattr(r, "dyntoolset")
        )
        if e in ("shutdown", "lease_released", "http_draining", "listeners_closed", "stopped")
    ]
    assert events == ["shutdown", "lease_released", "http_draining", "listeners_closed", "stopped"]
    assert running.events("listeners_closed")[0]["cancelled"] == 0
