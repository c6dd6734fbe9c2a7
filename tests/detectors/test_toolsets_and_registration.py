"""Toolset mapping of the built-in detectors, their registration and their context handling."""

from __future__ import annotations

import pluggy
import pytest

from dyntoolset import toolsets as mapping
from dyntoolset.detector import NoSettings
from dyntoolset.detectors import custom, elasticsearch, grafana, jaeger, prometheus
from dyntoolset.hookspecs import PROJECT
from dyntoolset.model import Discovered
from dyntoolset.toolsets import TOOLSET_BUILDERS, toolsets_for_type

from ._support import DETECTORS, ctx_for, service

PROM_LABELS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"}


def _found(detector_name: str, **kwargs: object) -> Discovered:
    detector = next(d for d in DETECTORS if d.name == detector_name)
    found = detector.detect(service(**kwargs), ctx_for(detector))  # type: ignore[arg-type]
    assert found is not None
    return found


def test_prometheus_toolset() -> None:
    found = _found("prometheus", name="prom", namespace="mon", labels=PROM_LABELS)
    (spec,) = prometheus.PrometheusDetector().toolsets(found, prometheus.PrometheusSettings())
    assert spec.kind == "prometheus/metrics"
    assert spec.config == {"prometheus_url": "http://prom.mon.svc.cluster.local:8080"}
    assert spec.description == "Prometheus metrics from prom in namespace mon"
    assert "PromQL" in spec.llm_instructions
    assert "http://prom.mon.svc.cluster.local:8080" in spec.llm_instructions


def test_vmselect_toolset_carries_the_query_prefix() -> None:
    found = _found(
        "prometheus",
        name="vmselect-main",
        namespace="vm",
        labels={"app.kubernetes.io/name": "vmselect"},
        ports=[{"name": "http", "port": 8481}],
        cluster_ip="None",
    )
    assert found.endpoint == "http://vmselect-main.vm.svc.cluster.local:8481"
    (spec,) = prometheus.PrometheusDetector().toolsets(found, prometheus.PrometheusSettings())
    assert spec.config == {
        "prometheus_url": "http://vmselect-main.vm.svc.cluster.local:8481/select/0/prometheus"
    }
    assert spec.description.startswith("VictoriaMetrics (Prometheus-compatible) metrics")


def test_grafana_toolset_has_no_api_key_unless_configured() -> None:
    found = _found(
        "grafana",
        name="grafana",
        namespace="mon",
        labels={"app.kubernetes.io/name": "grafana"},
        ports=[{"name": "http-web", "port": 80}],
    )
    (spec,) = grafana.GrafanaDetector().toolsets(found, grafana.GrafanaSettings())
    assert spec.kind == "grafana/dashboards"
    # HolmesGPT marks the toolset invalid when a referenced variable is missing.
    assert spec.config == {"api_url": "http://grafana.mon.svc.cluster.local:80"}
    assert spec.description and spec.llm_instructions


def test_grafana_api_key_env_setting_references_holmesgpts_environment() -> None:
    from dyntoolset.testing import make_service, run_detector

    svc = make_service(
        "grafana", "mon", labels={"app.kubernetes.io/name": "grafana"}, ports=[(80, "http-web")]
    )
    found = run_detector(grafana.GrafanaDetector, svc, {"api_key_env": "GRAFANA_TOKEN"})
    assert found is not None
    assert found.toolsets[0].config == {
        "api_url": "http://grafana.mon.svc.cluster.local:80",
        "api_key": "{{ env.GRAFANA_TOKEN }}",
    }


def test_grafana_api_key_env_must_be_a_variable_name() -> None:
    import pytest

    from dyntoolset.errors import ConfigError
    from dyntoolset.testing import make_service, run_detector

    svc = make_service("grafana", "mon", labels={"app.kubernetes.io/name": "grafana"})
    with pytest.raises(ConfigError) as info:
        run_detector(grafana.GrafanaDetector, svc, {"api_key_env": "a b}}"})
    assert [str(p) for p in info.value.problems] == [
        "$.detectors.grafana.config.api_key_env: 'a b}}' is not an environment variable name "
        "(letters, digits and '_', not starting with a digit)"
    ]


def test_elasticsearch_gives_cluster_and_data_toolsets() -> None:
    found = _found(
        "elasticsearch",
        name="quickstart-es-http",
        namespace="elastic",
        labels={"common.k8s.elastic.co/type": "elasticsearch"},
        ports=[{"name": "https", "port": 9200}],
    )
    specs = elasticsearch.ElasticsearchDetector().toolsets(
        found, elasticsearch.ElasticsearchSettings()
    )
    url = "https://quickstart-es-http.elastic.svc.cluster.local:9200"
    assert [s.kind for s in specs] == ["elasticsearch/cluster", "elasticsearch/data"]
    assert [dict(s.config) for s in specs] == [{"api_url": url}, {"api_url": url}]
    assert specs[0].description != specs[1].description


def test_jaeger_gets_the_generic_http_toolset() -> None:
    found = _found(
        "jaeger",
        name="jaeger-query",
        namespace="tracing",
        labels={"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/component": "query"},
        ports=[{"name": "query", "port": 80}],
    )
    (spec,) = jaeger.JaegerDetector().toolsets(found, NoSettings())
    assert spec.kind == "http"
    endpoint = spec.config["endpoints"][0]
    assert endpoint["hosts"] == ["http://jaeger-query.tracing.svc.cluster.local:80"]
    assert endpoint["methods"] == ["GET"]
    assert "/api/services" in spec.llm_instructions


@pytest.mark.parametrize(
    ("type_", "kinds"),
    [
        ("prometheus", ["prometheus/metrics"]),
        ("thanos", ["prometheus/metrics"]),
        ("victoriametrics", ["prometheus/metrics"]),
        ("grafana", ["grafana/dashboards"]),
        ("loki", ["grafana/loki"]),
        ("tempo", ["grafana/tempo"]),
        ("elasticsearch", ["elasticsearch/cluster", "elasticsearch/data"]),
        ("jaeger", ["http"]),
        ("billing-api", ["http"]),
    ],
)
def test_type_table(type_: str, kinds: list[str]) -> None:
    found = _found(
        "custom",
        name="api",
        namespace="team",
        annotations={"kubernaut.io/toolset": "true", "kubernaut.io/toolset-type": type_},
    )
    assert found.type == type_
    specs = custom.CustomDetector().toolsets(found, NoSettings())
    assert [s.kind for s in specs] == kinds
    for spec in specs:
        assert spec.description and spec.llm_instructions
        if spec.kind != "http":
            assert "http://api.team.svc.cluster.local:8080" in spec.config.values()
    assert [s.kind for s in toolsets_for_type(found)] == kinds


def test_loki_and_tempo_map_to_api_url() -> None:
    for type_, kind in (("loki", "grafana/loki"), ("tempo", "grafana/tempo")):
        found = _found(
            "custom",
            name="api",
            namespace="team",
            annotations={"kubernaut.io/toolset": "true", "kubernaut.io/toolset-type": type_},
        )
        (spec,) = TOOLSET_BUILDERS[type_](found)
        assert spec.kind == kind
        assert spec.config == {"api_url": "http://api.team.svc.cluster.local:8080"}


def test_every_builtin_kind_is_one_the_renderers_know() -> None:
    from dyntoolset.toolsets import BUILTIN_URL_KEYS

    found = _found("prometheus", name="p", namespace="n", labels=PROM_LABELS)
    for builder in TOOLSET_BUILDERS.values():
        for spec in builder(found):
            assert spec.kind in BUILTIN_URL_KEYS
            assert BUILTIN_URL_KEYS[spec.kind] in spec.config


# -- registration ------------------------------------------------------------


def test_each_module_registers_its_detector_through_the_hook() -> None:
    manager = pluggy.PluginManager(PROJECT)
    from dyntoolset import hookspecs

    manager.add_hookspecs(hookspecs)
    for module in (prometheus, grafana, jaeger, elasticsearch, custom):
        manager.register(module)
    registered = [cls for result in manager.hook.register_detectors() for cls in result]
    assert sorted(cls.name for cls in registered) == [
        "custom",
        "elasticsearch",
        "grafana",
        "jaeger",
        "prometheus",
    ]


def test_default_priorities_and_health_paths() -> None:
    assert [(d.name, d.default_priority, d.health_path) for d in DETECTORS] == [
        ("prometheus", 1, "/-/healthy"),
        ("grafana", 2, "/api/health"),
        ("jaeger", 3, "/"),
        ("elasticsearch", 4, "/_cluster/health"),
        ("custom", 5, "/"),
    ]
    for detector in DETECTORS:
        assert detector.description
        assert type(detector).__doc__


def test_the_toolsets_module_is_the_only_table() -> None:
    # Without credentials configured, every built-in writes exactly what the
    # one type -> toolset table gives its type: no detector carries a copy.
    found_by = {
        "prometheus": _found("prometheus", name="prom", namespace="mon", labels=PROM_LABELS),
        "grafana": _found("grafana", name="g", labels={"app.kubernetes.io/name": "grafana"}),
        "elasticsearch": _found(
            "elasticsearch",
            name="logs-es-http",
            labels={"common.k8s.elastic.co/type": "elasticsearch"},
            ports=[{"name": "https", "port": 9200}],
        ),
        "jaeger": _found(
            "jaeger",
            name="jaeger-query",
            labels={"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/component": "query"},
        ),
    }
    for name, found in found_by.items():
        detector = next(d for d in DETECTORS if d.name == name)
        assert tuple(detector.toolsets(found, type(detector).Settings())) == toolsets_for_type(
            found
        ), name
    assert mapping.toolsets_for_type is toolsets_for_type
    assert TOOLSET_BUILDERS["grafana"] is mapping.grafana_toolset


# -- context -----------------------------------------------------------------


def test_configured_health_path_and_cluster_domain_are_honoured() -> None:
    detector = prometheus.PrometheusDetector()
    svc = service("prom", "mon", labels=PROM_LABELS)
    found = detector.detect(
        svc, ctx_for(detector, health_path="/-/ready", cluster_domain="k8s.corp")
    )
    assert found is not None
    assert found.health_path == "/-/ready"
    assert found.endpoint == "http://prom.mon.svc.k8s.corp:8080"
    vm = service(
        "vmsingle-a", "vm", labels={"app.kubernetes.io/name": "vmsingle"}, ports=[{"port": 8429}]
    )
    found = detector.detect(vm, ctx_for(detector))
    assert found is not None and found.health_path == "/health"  # product default
    found = detector.detect(vm, ctx_for(detector, health_path="/ping"))
    assert found is not None and found.health_path == "/ping"  # configured path wins


@pytest.mark.parametrize(
    ("annotations", "scheme"),
    [
        ({}, "http"),
        ({"traefik.ingress.kubernetes.io/service.serversscheme": "https"}, "https"),
        ({"projectcontour.io/upstream-protocol.tls": "8080"}, "https"),
        ({"projectcontour.io/upstream-protocol.tls": "http"}, "https"),
        ({"projectcontour.io/upstream-protocol.tls": "9999"}, "http"),
        ({"service.beta.openshift.io/serving-cert-secret-name": "x"}, "https"),
    ],
)
def test_tls_annotations_select_https(annotations: dict[str, str], scheme: str) -> None:
    detector = prometheus.PrometheusDetector()
    svc = service("prom", "mon", labels=PROM_LABELS, annotations=annotations)
    found = detector.detect(svc, ctx_for(detector))
    assert found is not None
    assert found.endpoint == f"{scheme}://prom.mon.svc.cluster.local:8080"


def test_app_protocol_https_selects_https() -> None:
    detector = grafana.GrafanaDetector()
    svc = service(
        "g",
        "mon",
        labels={"app.kubernetes.io/name": "grafana"},
        ports=[{"name": "web", "port": 3000, "appProtocol": "https"}],
    )
    found = detector.detect(svc, ctx_for(detector))
    assert found is not None and found.endpoint == "https://g.mon.svc.cluster.local:3000"


def test_first_port_fallback_skips_udp() -> None:
    detector = prometheus.PrometheusDetector()
    ports = [{"name": "a", "port": 7000, "protocol": "UDP"}, {"name": "b", "port": 7001}]
    found = detector.detect(service("p", "n", labels=PROM_LABELS, ports=ports), ctx_for(detector))
    assert found is not None and found.port is not None and found.port.port == 7001


def test_the_elastic_chart_protocol_setting_wins_over_the_version_guess() -> None:
    from dyntoolset.testing import make_service, run_detector

    labels = {"chart": "elasticsearch", "app": "es-master", "release": "es"}
    svc = make_service("es-master", "search", labels=labels, ports=[(9200, "http")])
    for setting, scheme in (("auto", "https"), ("http", "http"), ("https", "https")):
        found = run_detector(
            elasticsearch.ElasticsearchDetector, svc, {"elastic_chart_protocol": setting}
        )
        assert (
            found is not None
            and found.endpoint == f"{scheme}://es-master.search.svc.cluster.local:9200"
        )
    old = make_service(
        "es-master", "search", labels={**labels, "chart": "elasticsearch-7.17.3"}, ports=[9200]
    )
    found = run_detector(elasticsearch.ElasticsearchDetector, old)
    assert found is not None and found.endpoint.startswith("http://")
    # Bitnami's chart (helm.sh/chart) keeps the usual rules: plain HTTP by default.
    bitnami = make_service(
        "bes-elasticsearch",
        "search",
        labels={
            "app.kubernetes.io/name": "elasticsearch",
            "helm.sh/chart": "elasticsearch-21.3.26",
        },
        ports=[(9200, "tcp-rest-api")],
    )
    found = run_detector(elasticsearch.ElasticsearchDetector, bitnami)
    assert found is not None and found.endpoint.startswith("http://")
