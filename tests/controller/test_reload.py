"""Configuration reloads against the emulator: apply, unchanged, every kind of bad input,
restart-required settings, serialisation, a reload during a reconcile, and the metrics."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from dyntoolset.controller.reconciler import Reconciler
from dyntoolset.controller.reload import Reloader, configmap_reader, file_reader
from dyntoolset.errors import ConfigError
from dyntoolset.health import HealthChecker
from dyntoolset.kube.config_source import ConfigMapRef
from dyntoolset.kube.configmaps import ConfigMapStore
from dyntoolset.kube.errors import Backoff
from dyntoolset.kube.services import ServiceCache
from dyntoolset.metrics import Metrics
from dyntoolset.model import Discovered
from dyntoolset.pipeline import Engine
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import FAST, PATIENCE, fast_backoff, prometheus, service, wait_for
from tests.kube.conftest import NAME, NAMESPACE, GatedHealth
from tests.test_plugins import detector_module

BASE = """\
health_checks: {enabled: false}
detectors:
  prometheus: {priority: 1}
  grafana: {priority: 2}
"""

#: Grafana disabled, Prometheus re-prioritised, the resync interval changed.
CHANGED = """\
resync_interval: 120
health_checks: {enabled: false}
detectors:
  prometheus: {priority: 50}
  grafana: {enabled: false}
"""


def grafana(name: str = "grafana") -> dict[str, Any]:
    return service(name, "monitoring", labels={"app.kubernetes.io/name": "grafana"}, port=3000)


def tools(configmap: dict[str, Any] | None) -> set[str]:
    """The Kubernaut tool names in a ConfigMap (``name.namespace``)."""
    data = (configmap or {}).get("data") or {}
    return {t["name"] for t in json.loads(data.get("toolset.json", '{"tools": []}'))["tools"]}


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [
        r.dyntoolset  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "dyntoolset", {}).get("event") == name
    ]


class Controller:
    """A cache, a store and a reconciler on the emulator, with a Reloader on a file."""

    def __init__(self, apiserver: ApiServer, path: Path, **reconciler: Any) -> None:
        self.apiserver = apiserver
        self.path = path
        self.metrics = Metrics()
        self.cache = ServiceCache(apiserver.api_client, timeouts=FAST, backoff=fast_backoff)
        self.store = ConfigMapStore(apiserver.api_client, NAMESPACE, NAME, timeouts=FAST)
        self.engine = Engine.load(path)
        reconciler.setdefault("debounce", 0.02)
        reconciler.setdefault("resync_interval", 3600.0)
        self.reconciler = Reconciler(
            self.engine,
            self.cache,
            self.store,
            metrics=self.metrics,
            backoff=Backoff(0.01, 0.2),
            **reconciler,
        )
        self.reloader = Reloader(self.reconciler, file_reader(str(path)), metrics=self.metrics)

    def start(self) -> None:
        self.cache.start()
        assert self.cache.wait_synced(PATIENCE)
        self.reconciler.start()

    def stop(self) -> None:
        self.reconciler.stop(10)
        self.cache.stop()
        self.store.close()

    def configmap(self) -> dict[str, Any] | None:
        return self.apiserver.get("configmaps", NAMESPACE, NAME)


@pytest.fixture
def controller(apiserver: ApiServer, tmp_path: Path) -> Iterator[Callable[..., Controller]]:
    made: list[Controller] = []

    def make(text: str = BASE, **reconciler: Any) -> Controller:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        made.append(Controller(apiserver, path, **reconciler))
        return made[-1]

    yield make
    for c in made:
        c.stop()


def test_a_reload_applies_the_new_configuration_and_says_what_changed(
    apiserver: ApiServer, controller: Callable[..., Controller], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    apiserver.seed(prometheus(), grafana())
    c = controller()
    c.start()
    wait_for(lambda: tools(c.configmap()) == {"prometheus.monitoring", "grafana.monitoring"})
    assert c.reloader.generation == 1 and c.reloader.source == str(c.path)

    c.path.write_text(CHANGED)
    report = c.reloader.reload("test")

    assert report.status == "success"
    assert report.generation == c.reloader.generation == 2
    assert report.changes == (
        "detector grafana disabled",
        "detector prometheus priority 1 -> 50",
        "setting resync_interval changed: 300.0 -> 120.0",
    )
    assert report.restart_required == ()
    assert report.detectors_disabled == 1
    assert report.detectors_enabled == len(c.reconciler.engine.config.detectors) - 1
    document = report.as_document()
    assert set(document) == {"status", "detectors_enabled", "detectors_disabled", "reload_time"}
    assert document["status"] == "success" and document["reload_time"].endswith("Z")
    # Swapped: the reconciler runs the new engine, with the new resync interval, and the
    # reconcile the reload triggered removes Grafana.
    assert c.reconciler.engine is not c.engine
    assert c.reconciler.resync_interval == 120.0
    wait_for(lambda: tools(c.configmap()) == {"prometheus.monitoring"})
    (logged,) = events(caplog, "config_reloaded")
    assert logged["trigger"] == "test" and logged["generation"] == 2
    assert logged["disabled"] == ["grafana"] and logged["enabled"] == []
    assert logged["reprioritised"] == [{"detector": "prometheus", "from": 1, "to": 50}]
    assert logged["global_settings_changed"] == ["resync_interval"]

    # Enabling again is reported as such.
    c.path.write_text(BASE)
    again = c.reloader.reload("test")
    assert again.generation == 3
    assert "detector grafana enabled" in again.changes
    wait_for(lambda: tools(c.configmap()) == {"prometheus.monitoring", "grafana.monitoring"})


def test_a_detector_setting_change_names_the_detector_and_the_key(
    controller: Callable[..., Controller],
) -> None:
    c = controller()
    c.path.write_text(
        BASE.replace("{priority: 1}", "{priority: 1, namespaces: [mon]}").replace(
            "{priority: 2}", "{priority: 2, health_check: {timeout: 2}}"
        )
    )
    report = c.reloader.reload("test")
    assert report.changes == (
        "detector grafana setting health_check.timeout changed",
        "detector prometheus setting namespaces changed",
    )


def test_settings_of_a_detector_disabled_before_and_after_do_not_count(
    controller: Callable[..., Controller],
) -> None:
    c = controller(CHANGED)
    c.path.write_text(
        CHANGED.replace("grafana: {enabled: false}", "grafana: {enabled: false, priority: 9}")
    )
    report = c.reloader.reload("test")
    assert (report.status, report.changes) == ("unchanged", ())


def test_the_same_effective_configuration_is_unchanged_and_swaps_nothing(
    controller: Callable[..., Controller], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    c = controller()
    # Reformatted, commented, defaults spelled out: the same configuration.
    c.path.write_text("# edited\nresync_interval: 300\n" + BASE + "  jaeger: {enabled: true}\n")
    report = c.reloader.reload("test")
    assert report.status == "unchanged" and report.changes == ()
    assert report.generation == 1
    assert c.reconciler.engine is c.engine
    # No reconcile was asked for (the unstarted reconciler has nothing due).
    assert c.reconciler.idle
    assert events(caplog, "config_reloaded")[0]["status"] == "unchanged"


BAD = [
    ("invalid_yaml", "detectors: [unclosed\n", "$"),
    ("wrong_type", "detectors: {prometheus: {enabled: 'no'}}\n", "$.detectors.prometheus.enabled"),
    (
        "out_of_range",
        "detectors: {prometheus: {priority: -5}}\n",
        "$.detectors.prometheus.priority",
    ),
    ("unknown_detector", "detectors: {nosuch: {}}\n", "$.detectors.nosuch"),
    ("oversized", "# " + "x" * (1 << 20) + "\n", "$"),
    (
        "alias_bomb",
        'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)}]\n"
            for i in range(8)
        ),
        "$",
    ),
]


@pytest.mark.parametrize(("text", "where"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_an_invalid_configuration_is_refused_and_the_running_one_stays(
    controller: Callable[..., Controller],
    caplog: pytest.LogCaptureFixture,
    text: str,
    where: str,
) -> None:
    c = controller()
    c.path.write_text(text)
    with pytest.raises(ConfigError) as info:
        c.reloader.reload("api")
    paths = [p.path for p in info.value.problems]
    assert where in paths
    assert all(str(p).startswith("$") for p in info.value.problems)
    assert c.reconciler.engine is c.engine and c.reloader.generation == 1
    assert c.reconciler.idle
    (failed,) = events(caplog, "config_reload_failed")
    assert failed["trigger"] == "api" and failed["generation"] == 1
    assert failed["problems"] == [str(p) for p in info.value.problems]
    assert c.metrics.value("dynamic_toolset_config_reloads_total", {"result": "failure"}) == 1


def test_an_unusable_health_setting_is_refused_and_the_running_checker_stays(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    c = controller()
    running = HealthChecker.from_config(c.engine.config)
    c.reconciler.health = running
    reloader = Reloader(
        c.reconciler,
        file_reader(str(c.path)),
        metrics=c.metrics,
        health=HealthChecker.from_config,
    )
    c.path.write_text(
        BASE.replace("{enabled: false}", f"{{enabled: false, ca_file: {tmp_path / 'none.pem'}}}")
    )
    with pytest.raises(ConfigError) as info:
        reloader.reload("api")
    (problem,) = info.value.problems
    assert problem.path == "$.health_checks"
    assert "health_checks.ca_file" in problem.message and "none.pem" in problem.message
    assert c.reconciler.health is running and c.reconciler.engine is c.engine


def test_a_deleted_file_keeps_the_running_configuration(
    controller: Callable[..., Controller],
) -> None:
    c = controller()
    c.path.unlink()
    with pytest.raises(ConfigError, match="no such file"):
        c.reloader.reload("file")
    assert c.reconciler.engine is c.engine
    assert c.reloader.try_reload("file") is None


def test_moving_the_output_configmap_needs_a_restart_and_is_reported(
    apiserver: ApiServer, controller: Callable[..., Controller], caplog: pytest.LogCaptureFixture
) -> None:
    apiserver.seed(prometheus())
    c = controller()
    c.start()
    wait_for(c.configmap)
    c.path.write_text(BASE + "output: {name: elsewhere, namespace: other}\n")
    report = c.reloader.reload("test")
    assert report.status == "unchanged"  # nothing else changed: nothing to apply
    assert len(report.restart_required) == 2
    assert report.restart_required[0].startswith("output.name: running with")
    assert report.restart_required[1].startswith("output.namespace: running with")
    (warned,) = events(caplog, "config_restart_required")
    assert warned["settings"] == list(report.restart_required)

    # With another change, that change is applied and the output stays where it is.
    c.path.write_text(BASE.replace("priority: 2", "enabled: false") + "output: {name: elsewhere}\n")
    report = c.reloader.reload("test")
    assert report.status == "success" and report.changes == ("detector grafana disabled",)
    assert report.restart_required == (
        "output.name: running with 'kubernaut-toolset-config', the configuration says 'elsewhere'",
    )
    assert c.reconciler.engine.config.output.name == NAME
    wait_for(lambda: c.reconciler.last_outcome and c.reconciler.reconciles >= 2)
    assert apiserver.get("configmaps", NAMESPACE, "elsewhere") is None


def test_widening_the_watched_namespaces_needs_a_restart(
    controller: Callable[..., Controller],
) -> None:
    scoped = "health_checks: {enabled: false}\ndetectors:\n" + "".join(
        f"  {name}: {{enabled: false}}\n"
        for name in Engine.load(None).config.detectors
        if name != "prometheus"
    )
    c = controller(scoped + "  prometheus: {namespaces: [monitoring]}\n")
    c.path.write_text(scoped + "  prometheus: {namespaces: [monitoring, obs]}\n")
    wider = c.reloader.reload("test")
    assert wider.status == "success"
    assert wider.restart_required == (
        "the namespaces the Service cache watches: running with monitoring, the detectors' "
        "namespace filters now need monitoring, obs",
    )


def test_plugin_path_detectors_are_loaded_again_on_each_reload(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    plugin = tmp_path / "mine.py"
    plugin.write_text(detector_module("x", "mine", priority=50))
    c = controller(BASE + f"  mine: {{plugin: {{path: {plugin}}}}}\n")
    assert c.engine.config.detectors["mine"].priority == 50
    # Imported again (a new class), the same configuration: no change.
    assert c.reloader.reload("test").status == "unchanged"

    plugin.write_text(detector_module("x", "mine", priority=60))
    assert c.reloader.reload("test").changes == ("detector mine priority 50 -> 60",)

    plugin.unlink()
    gone = c.reloader.reload("test")
    assert gone.changes == ("detector mine disabled",)
    assert c.metrics.value("dynamic_toolset_plugin_load_errors") == 1
    assert c.engine.plugins.failures == []  # the start-up set is untouched


def test_concurrent_reloads_run_one_at_a_time(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    c = controller()
    inside = 0
    most = 0
    lock = threading.Lock()
    first_in = threading.Event()
    release = threading.Event()
    texts = iter([CHANGED, BASE])

    def read() -> tuple[str, str]:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        first_in.set()
        release.wait(PATIENCE)
        with lock:
            inside -= 1
        return next(texts), str(c.path)

    reloader = Reloader(c.reconciler, read, metrics=c.metrics)
    reports: list[Any] = []
    threads = [
        threading.Thread(target=lambda: reports.append(reloader.reload("api"))) for _ in range(2)
    ]
    threads[0].start()
    assert first_in.wait(PATIENCE)
    threads[1].start()
    release.set()
    for t in threads:
        t.join(PATIENCE)
    assert most == 1
    assert sorted(r.generation for r in reports) == [2, 3]


def test_a_reconcile_in_flight_finishes_on_the_configuration_it_started_with(
    apiserver: ApiServer, controller: Callable[..., Controller]
) -> None:
    apiserver.seed(prometheus(), grafana())
    health = GatedHealth()
    c = controller(health=health)
    c.start()
    assert health.entered.wait(PATIENCE)  # the first reconcile is held in its health check

    c.path.write_text(CHANGED)
    report = c.reloader.reload("api")  # does not wait for the reconcile in flight
    assert report.status == "success"
    assert c.reconciler.engine is not c.engine
    assert c.reconciler.reconciles == 0

    health.gate.set()
    wait_for(lambda: len(health.checked) >= 2, what="the reconcile the reload triggered")
    # The held reconcile checked (and published) what the old engine discovered ...
    assert sorted(health.checked[0]) == ["grafana", "prometheus"]
    # ... and the next one ran on the new engine.
    assert health.checked[1] == ["prometheus"]
    wait_for(lambda: tools(c.configmap()) == {"prometheus.monitoring"})
    written = [tools(w.body) for w in apiserver.writes("configmaps", namespace=NAMESPACE)]
    assert written[0] == {"prometheus.monitoring", "grafana.monitoring"}
    assert written[-1] == {"prometheus.monitoring"}


class GatedStore:
    """The real store, whose first read waits for ``gate`` (the reconciler's
    ConfigMapAccess boundary): holds a reconcile after it started, before it discovers."""

    def __init__(self, store: ConfigMapStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.gate = threading.Event()

    def read(self) -> dict[str, Any] | None:
        self.entered.set()
        self.gate.wait(PATIENCE)
        return self.store.read()

    def write(self, configmap: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        return self.store.write(configmap, existing)


class Tagged:
    """A health check (the pipeline's boundary) that records which one ran."""

    def __init__(self, tag: str, ran: list[str]) -> None:
        self.tag, self.ran = tag, ran

    def check(self, discovered: Sequence[Discovered]) -> list[Discovered]:
        self.ran.append(self.tag)
        return list(discovered)


def test_engine_and_health_checker_are_swapped_as_one_pair(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    """A reconcile that started before a reload swapped the health checker still runs
    the old checker: it took the engine and the checker together when it started."""
    apiserver.seed(prometheus())
    path = tmp_path / "config.yaml"
    path.write_text("health_checks: {cache_ttl: 30}\n")
    ran: list[str] = []
    c = Controller(apiserver, path, health=Tagged("old", ran))
    gated = c.reconciler.store = GatedStore(c.store)
    reloader = Reloader(
        c.reconciler,
        file_reader(str(path)),
        metrics=c.metrics,
        health=lambda config: Tagged("new", ran),  # type: ignore[arg-type,return-value]
    )
    try:
        c.start()
        assert gated.entered.wait(PATIENCE)
        path.write_text("health_checks: {cache_ttl: 40}\n")
        assert reloader.reload("api").changes == (
            "setting health_checks.cache_ttl changed: 30.0 -> 40.0",
        )
        gated.gate.set()
        wait_for(lambda: len(ran) >= 2, what="the reconcile after the reload")
        assert ran[:2] == ["old", "new"]
    finally:
        gated.gate.set()
        c.stop()


def test_metrics_count_every_result(controller: Callable[..., Controller]) -> None:
    c = controller()
    value = c.metrics.value
    assert value("dynamic_toolset_config_generation") == 1
    c.reloader.reload("api")
    c.path.write_text(CHANGED)
    c.reloader.reload("api")
    c.path.write_text("detectors: 3\n")
    assert c.reloader.try_reload("api") is None
    assert value("dynamic_toolset_config_reloads_total", {"result": "unchanged"}) == 1
    assert value("dynamic_toolset_config_reloads_total", {"result": "success"}) == 1
    assert value("dynamic_toolset_config_reloads_total", {"result": "failure"}) == 1
    assert value("dynamic_toolset_config_generation") == 2


# -- the ConfigMap source ----------------------------------------------------------------

REF = ConfigMapRef(NAMESPACE, "dyntoolset-config")


def config_configmap(text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": REF.name, "namespace": REF.namespace},
        "data": {"config.yaml": text},
    }


def test_a_configmap_source_is_read_again_through_the_api(
    apiserver: ApiServer, controller: Callable[..., Controller]
) -> None:
    c = controller()
    apiserver.create(config_configmap(CHANGED))
    reloader = Reloader(
        c.reconciler, configmap_reader(apiserver.api_client, REF), metrics=c.metrics
    )
    report = reloader.reload("configmap")
    assert report.status == "success" and "detector grafana disabled" in report.changes
    assert reloader.source == str(REF)


def test_a_deleted_configmap_keeps_the_running_configuration(
    apiserver: ApiServer, controller: Callable[..., Controller]
) -> None:
    c = controller()
    reloader = Reloader(
        c.reconciler, configmap_reader(apiserver.api_client, REF), metrics=c.metrics
    )
    with pytest.raises(ConfigError) as info:
        reloader.reload("configmap")
    assert [str(p) for p in info.value.problems] == [
        "$: the ConfigMap does not exist; keeping the running configuration"
    ]
    assert c.reconciler.engine is c.engine


def test_an_api_failure_reading_the_configmap_is_a_config_error(
    apiserver: ApiServer, controller: Callable[..., Controller]
) -> None:
    c = controller()
    apiserver.create(config_configmap(CHANGED))
    apiserver.fail(403, verb="get", resource="configmaps")
    reloader = Reloader(
        c.reconciler, configmap_reader(apiserver.api_client, REF), metrics=c.metrics
    )
    with pytest.raises(ConfigError) as info:
        reloader.reload("configmap")
    (problem,) = info.value.problems
    assert problem.path == "$" and "cannot read the configuration" in problem.message
    assert c.reconciler.engine is c.engine
