"""``dyntoolset run`` as a real subprocess against the emulator started by the test."""

from __future__ import annotations

import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dyntoolset.testing.apiserver import ApiServer
from dyntoolset.version import __version__
from tests.apiserver.conftest import Kubectl, kubectl_binary
from tests.kube._support import prometheus
from tests.kube.conftest import create_namespace

NAMESPACE = "kubernaut-system"
NAME = "kubernaut-toolset-config"

#: Health checks off: the emulator's Services have no backends.
CONFIG = "health_checks: {enabled: false}\n"

#: A wait that hits this is a failure, not a slow machine (a process imports the
#: kubernetes client's models first, which takes seconds on a busy machine).
PATIENCE = 90.0

#: Short leader-election timings (lease 3 s, renew deadline 2 s, retry 0.25 s).
FAST_LEASE = [
    "--leader-elect-lease-duration",
    "3",
    "--leader-elect-renew-deadline",
    "2",
    "--leader-elect-retry-period",
    "0.25",
]


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = PATIENCE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Run:
    """One ``dyntoolset run`` process; its stderr holds JSON log lines."""

    def __init__(self, tmp_path: Path, label: str, kubeconfig: Path, *args: str) -> None:
        self.label = label
        self.stdout_path = tmp_path / f"{label}.out"
        self.stderr_path = tmp_path / f"{label}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env["HOME"] = str(tmp_path)
        self.argv = [
            sys.executable,
            "-m",
            "dyntoolset",
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            *args,
        ]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=err, env=env)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.stderr().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                found.append(record)
        return found

    def event(self, name: str, **fields: Any) -> dict[str, Any] | None:
        for record in self.events():
            if record.get("event") == name and all(record.get(k) == v for k, v in fields.items()):
                return record
        return None

    def address(self, role: str) -> tuple[str, int]:
        def listening() -> dict[str, Any] | None:
            self.check_alive()
            for record in self.events():
                if record.get("event") == "listening" and role in record.get("roles", ()):
                    return record
            return None

        host, port = wait_for(listening, f"{self.label} listening")["address"].rsplit(":", 1)
        return host, int(port)

    def get(self, path: str, role: str = "probes") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(*self.address(role), timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.label} exited with {self.process.returncode}:\n{self.stderr()[-3000:]}"
            )

    def wait(self, timeout: float = PATIENCE) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def start(tmp_path: Path, kubeconfig: Path, config_file: Path) -> Iterator[Callable[..., Run]]:
    runs: list[Run] = []

    def launch(*args: str, label: str = "run", kubeconfig: Path = kubeconfig) -> Run:
        run = Run(tmp_path, label, kubeconfig, "-c", str(config_file), *args)
        runs.append(run)
        return run

    yield launch
    for run in runs:
        run.stop()


def configmap_text(api: ApiServer) -> str:
    stored = api.get("configmaps", NAMESPACE, NAME)
    return "" if stored is None else json.dumps(stored.get("data") or {})


def test_run_keeps_the_configmap_current(
    apiserver: ApiServer, start: Callable[..., Run], tmp_path: Path, kubeconfig: Path
) -> None:
    apiserver.create(prometheus("prometheus", "monitoring"))
    run = start()
    wait_for(lambda: "prometheus.monitoring" in configmap_text(apiserver), "the ConfigMap")
    status, body = run.get("/ready")
    assert status == 200, body
    assert json.loads(body)["checks"]["cache_synced"]["ok"] is True
    assert run.event("synced") is not None
    # Out of the cluster, leader election is off unless asked for.
    assert run.event("starting", leader_election=False) is not None
    assert apiserver.list_objects("leases") == []
    # A Service created later, through the client...
    apiserver.create(prometheus("thanos-query", "thanos"))
    wait_for(lambda: "thanos-query.thanos" in configmap_text(apiserver), "the new Service")
    # ... and one applied with kubectl.
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("no kubectl found (scripts/test-deps.sh installs Debian's kubernetes-client)")
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: metrics\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: vm\n  namespace: metrics\n"
        "  labels: {app.kubernetes.io/name: prometheus}\n"
        "spec:\n  ports: [{name: web, port: 9090}]\n"
    )
    applied = Kubectl(binary, kubeconfig).run("apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    wait_for(lambda: "vm.metrics" in configmap_text(apiserver), "the Service kubectl applied")
    # Metrics are live.
    status, text = run.get("/metrics", role="metrics")
    assert status == 200
    assert b'dynamic_toolset_configmap_reconciliations_total{result="success"}' in text
    assert b"dynamic_toolset_leader_election_is_leader 1.0" in text  # no election: it writes
    assert b"dynamic_toolset_cache_synced 1.0" in text
    assert b"dynamic_toolset_plugin_load_errors 0.0" in text
    assert b"dynamic_toolset_cache_services 3.0" in text
    assert (
        b'dynamic_toolset_build_info{python="%s",version="%s"} 1.0'
        % (
            platform.python_version().encode(),
            __version__.encode(),
        )
        in text
    )
    assert (
        b'dynamic_toolset_plugin_info{distribution="dyntoolset",version="%s"} 1.0'
        % (__version__.encode())
        in text
    )
    # One line per event that matters (with counts), none per Service at info level.
    reconcile = run.event("reconcile", result="success")
    assert reconcile is not None and "discovered=" in reconcile["message"]
    assert run.event("write") is not None
    assert not any("thanos-query" in e["message"] for e in run.events() if e["level"] == "info")


def test_a_plugin_that_fails_to_load_is_counted(
    apiserver: ApiServer,
    start: Callable[..., Run],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real installed distribution (metadata on sys.path) whose module raises on import."""
    site = tmp_path / "site"
    dist_info = site / "dyntoolset_broken-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: dyntoolset-broken\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text("[dyntoolset]\nbroken = dyntoolset_broken\n")
    (site / "dyntoolset_broken.py").write_text("raise ImportError('broken on purpose')\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.delenv("DYNTOOLSET_LOAD_PLUGINS", raising=False)
    apiserver.create(prometheus("prometheus", "monitoring"))
    run = start()
    wait_for(lambda: "prometheus.monitoring" in configmap_text(apiserver), "the ConfigMap")
    status, text = run.get("/metrics", role="metrics")
    assert status == 200
    assert b"dynamic_toolset_plugin_load_errors 1.0" in text


def test_once_writes_and_exits_zero(apiserver: ApiServer, start: Callable[..., Run]) -> None:
    apiserver.create(prometheus())
    run = start("--once")
    assert run.wait() == 0, run.stderr()
    assert "prometheus.monitoring" in configmap_text(apiserver)
    assert [w.verb for w in apiserver.writes("configmaps")] == ["create"]
    # A second --once over an unchanged cluster writes nothing.
    again = start("--once", label="again")
    assert again.wait() == 0, again.stderr()
    assert len(apiserver.writes("configmaps")) == 1
    assert again.event("done", result="unchanged") is not None


def test_once_fails_when_the_api_refuses_the_write(
    apiserver: ApiServer, start: Callable[..., Run]
) -> None:
    apiserver.create(prometheus())
    apiserver.fail(403, reason="Forbidden", verb="create", resource="configmaps")
    run = start("--once")
    assert run.wait() == 1
    err = run.stderr()
    assert "reconcile failed" in err
    assert "resources: [configmaps], verbs: [create]" in err  # the RBAC rule to add
    assert apiserver.writes("configmaps") == []


def test_once_fails_when_the_services_never_list(
    apiserver: ApiServer, start: Callable[..., Run]
) -> None:
    apiserver.fail(500, verb="list", resource="services")
    run = start("--once", "--sync-timeout", "3")
    assert run.wait() == 1
    assert run.event("sync_timeout") is not None
    assert apiserver.writes("configmaps") == []


def test_dry_run_prints_the_diff_and_writes_nothing(
    apiserver: ApiServer, start: Callable[..., Run]
) -> None:
    apiserver.create(prometheus())
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "data": {"overrides.yaml": "toolsets: {}\n"},
        }
    )
    run = start("--dry-run")
    assert run.wait() == 0, run.stderr()
    diff = run.stdout()
    assert diff.startswith(f"--- live/{NAMESPACE}/{NAME}\n+++ generated/{NAMESPACE}/{NAME}\n")
    assert "+  custom_toolset.yaml: |" in diff or "+  custom_toolset.yaml:" in diff
    assert "prometheus.monitoring" in diff
    assert apiserver.writes("configmaps") == []
    assert apiserver.count(verb=("create", "update", "patch", "delete")) == 0


def test_sigterm_stops_ready_finishes_the_reconcile_and_releases_the_lease(
    apiserver: ApiServer, start: Callable[..., Run]
) -> None:
    apiserver.create(prometheus())
    run = start("--leader-elect", *FAST_LEASE, "--shutdown-grace-period", "30")
    wait_for(lambda: "prometheus.monitoring" in configmap_text(apiserver), "the ConfigMap")
    lease = wait_for(lambda: apiserver.get("leases", NAMESPACE, "dyntoolset"), "the Lease")
    assert lease["spec"]["holderIdentity"]
    assert run.get("/ready")[0] == 200
    # Make the next reconcile slow: its read of the ConfigMap waits 3 s.
    slow = apiserver.delay(3, verb="get", resource="configmaps", name=NAME, times=1)
    apiserver.create(prometheus("late", "monitoring"))
    wait_for(lambda: slow.seen, "the reconcile to start")
    sent = time.monotonic()
    run.process.send_signal(signal.SIGTERM)
    _, body = wait_for(lambda: _not_ready(run), "/ready 503", timeout=10)
    assert json.loads(body)["status"] == "shutting down"
    assert run.wait(timeout=60) == 0, run.stderr()
    assert time.monotonic() - sent < 30  # within the grace period
    # The in-flight reconcile finished: the late Service was written ...
    assert "late.monitoring" in configmap_text(apiserver)
    # ... before the Lease was released.
    spec = apiserver.get("leases", NAMESPACE, "dyntoolset")["spec"]  # type: ignore[index]
    assert not spec.get("holderIdentity")
    assert spec["leaseDurationSeconds"] == 1
    order = [
        (r.verb, r.resource)
        for r in apiserver.requests
        if r.verb in ("create", "update") and r.status < 300
    ]
    last_cm = max(i for i, w in enumerate(order) if w[1] == "configmaps")
    release = max(i for i, w in enumerate(order) if w[1] == "leases")
    assert last_cm < release
    events = [e.get("event") for e in run.events()]
    assert events.index("shutdown") < events.index("lease_released") < events.index("stopped")


def test_a_shutdown_that_overruns_the_grace_period_is_cut_short(
    apiserver: ApiServer, start: Callable[..., Run]
) -> None:
    apiserver.create(prometheus())
    run = start("--shutdown-grace-period", "2")
    wait_for(lambda: "prometheus.monitoring" in configmap_text(apiserver), "the ConfigMap")
    # The next reconcile's read of the ConfigMap hangs far longer than the grace period.
    hang = apiserver.stall(60, verb="get", resource="configmaps", name=NAME, times=1)
    apiserver.create(prometheus("late", "monitoring"))
    wait_for(lambda: hang.seen, "the reconcile to start")
    sent = time.monotonic()
    run.process.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 1
    assert time.monotonic() - sent < 30  # 2 s grace; the 60 s stall was not waited out
    assert run.event("grace_exceeded") is not None
    assert run.event("stopped") is None


def _not_ready(run: Run) -> tuple[int, bytes] | None:
    try:
        status, body = run.get("/ready")
    except OSError:
        raise AssertionError("the process stopped serving before /ready said 503") from None
    return (status, body) if status == 503 else None


def test_two_controllers_one_writer_and_a_takeover_after_sigkill(
    apiserver_factory: Callable[..., ApiServer], tmp_path: Path, config_file: Path
) -> None:
    api = apiserver_factory(tokens={"token-a": "replica-a", "token-b": "replica-b"})
    create_namespace(api)
    api.create(prometheus())
    runs = []
    try:
        a = Run(
            tmp_path,
            "a",
            api.write_kubeconfig(tmp_path / "a.kubeconfig", token="token-a"),
            "-c",
            str(config_file),
            "--leader-elect",
            *FAST_LEASE,
        )
        runs.append(a)
        wait_for(lambda: "prometheus.monitoring" in configmap_text(api), "a's first write")
        b = Run(
            tmp_path,
            "b",
            api.write_kubeconfig(tmp_path / "b.kubeconfig", token="token-b"),
            "-c",
            str(config_file),
            "--leader-elect",
            *FAST_LEASE,
        )
        runs.append(b)
        wait_for(lambda: b.get("/ready")[0] == 200, "b ready (a follower is ready)")
        # Churn while both run: only the leader writes.
        for i in range(3):
            api.create(prometheus(f"p{i}", "monitoring"))
            wait_for(lambda i=i: f"p{i}.monitoring" in configmap_text(api), f"p{i}")
        assert b"dynamic_toolset_leader_election_is_leader 0.0" in b.get("/metrics", "metrics")[1]
        a.process.send_signal(signal.SIGKILL)
        a.process.wait(30)
        killed = time.monotonic()
        # While both ran, only the leader wrote.
        before = api.writes("configmaps")
        assert {w.user for w in before} == {"replica-a"}
        wait_for(
            lambda: (
                (api.get("leases", NAMESPACE, "dyntoolset") or {})
                .get("spec", {})
                .get("holderIdentity", "")
                .startswith(_identity_of(b))
            ),
            "b to take the Lease",
        )
        took = time.monotonic() - killed
        assert took < 3 * 10  # the lease duration (3 s) plus retries, very wide margin
        api.create(prometheus("after", "monitoring"))
        wait_for(lambda: "after.monitoring" in configmap_text(api), "b's first write")
        assert b"dynamic_toolset_leader_election_is_leader 1.0" in b.get("/metrics", "metrics")[1]
        assert b.event("leadership", leader=True, identity=_identity_of(b)) is not None
        # After the takeover, only b writes.
        after = api.writes("configmaps")[len(before) :]
        assert after and {w.user for w in after} == {"replica-b"}
    finally:
        for run in runs:
            run.stop()


def _identity_of(run: Run) -> str:
    record = wait_for(lambda: run.event("starting"), f"{run.label} starting")
    return str(record["identity"])


def _post(run: Run, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection(*run.address("probes"), timeout=30)
    try:
        conn.request("POST", path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


def test_run_serves_the_api_with_kubernetes_auth(
    apiserver: ApiServer, start: Callable[..., Run]
) -> None:
    apiserver.add_token("reader-token", "reader")
    apiserver.allow("reader", "get", path="/api/v1/*")
    run = start()
    status, headers, problem = _post(run, "/api/v1/config/reload", {})
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="dyntoolset"'
    assert problem["instance"] == "/api/v1/config/reload"
    # Reading is not reloading: the reader's SubjectAccessReview for create is denied.
    auth = {"Authorization": "Bearer reader-token", "X-Request-Id": "run-1"}
    status, headers, problem = _post(run, "/api/v1/config/reload", auth)
    assert status == 403 and headers["X-Request-Id"] == "run-1"
    assert apiserver.count(resource="tokenreviews") == 1
    (review,) = apiserver.find_requests(resource="subjectaccessreviews")
    assert review.body["spec"]["nonResourceAttributes"] == {
        "path": "/api/v1/config/reload",
        "verb": "create",
    }
    logged = wait_for(lambda: run.event("api_request", request_id="run-1"), "the access log")
    assert logged["status"] == 403 and logged["user"] == "reader"
    assert "reader-token" not in run.stderr()
    status, text = run.get("/metrics", role="metrics")
    assert b'dynamic_toolset_api_auth_failures_total{reason="forbidden"} 1.0' in text


def test_auth_none_is_refused_off_loopback(
    apiserver: ApiServer, tmp_path: Path, kubeconfig: Path, config_file: Path
) -> None:
    config_file.write_text(CONFIG + "api: {auth: {mode: none}}\n")
    run = Run(tmp_path, "open", kubeconfig, "-c", str(config_file), "--listen", "0.0.0.0:0")
    try:
        assert run.wait() == 2
    finally:
        run.stop()
    assert (
        "$.api.auth.mode: none (no authentication) is accepted only when --listen is a "
        "loopback address, not 0.0.0.0:0" in run.stderr()
    )
