"""Tests of the dyntoolset-loki plugin, written only against dyntoolset.testing and pytest.

The Services below are the ones the Helm charts create (labels and ports as
their templates render them for a release named ``loki`` in ``logging``).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from dyntoolset_loki import TENANT_ANNOTATION, LokiDetector

from dyntoolset import ConfigError, Engine, find_plugins, load_plugins
from dyntoolset.plugin import InvalidService, Service
from dyntoolset.testing import (
    check_detector,
    check_entry_point,
    fake_distribution,
    make_plugin_set,
    make_service,
    on_sys_path,
    run_detector,
)

NS = "logging"


def chart_labels(component: str | None = None, **extra: str) -> dict[str, str]:
    """``loki.labels`` of the grafana/loki chart (6.x), plus the component label."""
    labels = {
        "helm.sh/chart": "loki-6.16.0",
        "app.kubernetes.io/name": "loki",
        "app.kubernetes.io/instance": "loki",
        "app.kubernetes.io/version": "3.2.0",
        "app.kubernetes.io/managed-by": "Helm",
    }
    if component is not None:
        labels["app.kubernetes.io/component"] = component
    labels.update(extra)
    return labels


LOKI_PORTS: list[Any] = [(3100, "http-metrics"), (9095, "grpc")]
HEADLESS = "None"

# -- grafana/loki chart, every Service of the three deployment modes ----------------

SINGLE_BINARY = make_service("loki", NS, labels=chart_labels(), ports=LOKI_PORTS)
SINGLE_BINARY_COMPONENT = make_service(
    "loki", NS, labels=chart_labels("single-binary"), ports=LOKI_PORTS
)
READ = make_service("loki-read", NS, labels=chart_labels("read"), ports=LOKI_PORTS)
QUERY_FRONTEND = make_service(
    "loki-query-frontend",
    NS,
    labels=chart_labels("query-frontend"),
    ports=[*LOKI_PORTS, (9096, "grpclb")],
)
GATEWAY = make_service("loki-gateway", NS, labels=chart_labels("gateway"), ports=[(80, "http")])

CHART_NEAR_MISSES = [
    make_service(
        "loki-headless",
        NS,
        labels=chart_labels("single-binary", variant="headless"),
        ports=[(3100, "http-metrics")],
        cluster_ip=HEADLESS,
    ),
    make_service(
        "loki-memberlist", NS, labels=chart_labels(), ports=[(7946, "tcp")], cluster_ip=HEADLESS
    ),
    make_service(
        "loki-read-headless",
        NS,
        labels=chart_labels("read", variant="headless"),
        ports=LOKI_PORTS,
        cluster_ip=HEADLESS,
    ),
    make_service("loki-write", NS, labels=chart_labels("write"), ports=LOKI_PORTS),
    make_service(
        "loki-query-scheduler-discovery",
        NS,
        labels=chart_labels("backend", **{"prometheus.io/service-monitor": "false"}),
        ports=LOKI_PORTS,
        cluster_ip=HEADLESS,
    ),
    make_service("loki-backend", NS, labels=chart_labels("backend"), ports=LOKI_PORTS),
    make_service(
        "loki-query-frontend-headless",
        NS,
        labels=chart_labels("query-frontend", **{"prometheus.io/service-monitor": "false"}),
        ports=LOKI_PORTS,
        cluster_ip=HEADLESS,
    ),
    make_service("loki-distributor", NS, labels=chart_labels("distributor"), ports=LOKI_PORTS),
    make_service("loki-ingester", NS, labels=chart_labels("ingester"), ports=LOKI_PORTS),
    make_service(
        "loki-ingester-zone-a-headless",
        NS,
        labels=chart_labels("ingester", **{"rollout-group": "ingester", "zone": "zone-a"}),
        ports=LOKI_PORTS,
        cluster_ip=HEADLESS,
    ),
    make_service("loki-querier", NS, labels=chart_labels("querier"), ports=LOKI_PORTS),
    make_service(
        "loki-query-scheduler", NS, labels=chart_labels("query-scheduler"), ports=LOKI_PORTS
    ),
    make_service("loki-index-gateway", NS, labels=chart_labels("index-gateway"), ports=LOKI_PORTS),
    make_service("loki-compactor", NS, labels=chart_labels("compactor"), ports=LOKI_PORTS),
    make_service("loki-ruler", NS, labels=chart_labels("ruler"), ports=LOKI_PORTS),
    make_service("loki-canary", NS, labels=chart_labels("canary"), ports=[(3500, "http-metrics")]),
    make_service(
        "loki-chunks-cache",
        NS,
        labels=chart_labels("memcached-chunks-cache"),
        ports=[(11211, "memcached-client"), (9150, "http-metrics")],
        cluster_ip=HEADLESS,
    ),
    make_service(
        "loki-results-cache",
        NS,
        labels=chart_labels("memcached-results-cache"),
        ports=[(11211, "memcached-client"), (9150, "http-metrics")],
        cluster_ip=HEADLESS,
    ),
]

# -- other charts ----------------------------------------------------------------------

# grafana/loki 2.x (also the loki-stack subchart): legacy app/release labels only.
LEGACY = make_service(
    "loki",
    NS,
    labels={"app": "loki", "chart": "loki-2.16.0", "release": "loki", "heritage": "Helm"},
    ports=[(3100, "http-metrics")],
)
LEGACY_HEADLESS = make_service(
    "loki-headless",
    NS,
    labels={"app": "loki", "release": "loki", "variant": "headless"},
    ports=[(3100, "http-metrics")],
    cluster_ip=HEADLESS,
)
# grafana/loki-distributed: port "http"; its query-frontend Service was headless.
DISTRIBUTED_QF = make_service(
    "loki-loki-distributed-query-frontend",
    NS,
    labels={
        "app.kubernetes.io/name": "loki-distributed",
        "app.kubernetes.io/instance": "loki",
        "app.kubernetes.io/component": "query-frontend",
    },
    ports=[(3100, "http"), (9095, "grpc")],
    cluster_ip=HEADLESS,
)
# Bitnami grafana-loki: port "http"; its promtail carries the chart's name too.
BITNAMI_QF = make_service(
    "grafana-loki-query-frontend",
    NS,
    labels={
        "app.kubernetes.io/name": "grafana-loki",
        "app.kubernetes.io/part-of": "grafana-loki",
        "app.kubernetes.io/component": "query-frontend",
    },
    ports=[(3100, "http"), (9095, "grpc")],
)
BITNAMI_PROMTAIL = make_service(
    "grafana-loki-promtail",
    NS,
    labels={
        "app.kubernetes.io/name": "grafana-loki",
        "app.kubernetes.io/component": "promtail",
    },
    ports=[(8080, "http-metrics")],
)
PROMTAIL = make_service(
    "promtail-metrics",
    NS,
    labels={"app.kubernetes.io/name": "promtail", "app.kubernetes.io/instance": "promtail"},
    ports=[(3101, "http-metrics")],
)
GRAFANA = make_service(
    "loki-grafana",
    NS,
    labels={"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "loki"},
    ports=[(80, "service")],
)

ALL_SAMPLES = [
    SINGLE_BINARY,
    READ,
    QUERY_FRONTEND,
    GATEWAY,
    *CHART_NEAR_MISSES,
    LEGACY,
    LEGACY_HEADLESS,
    DISTRIBUTED_QF,
    BITNAMI_QF,
    BITNAMI_PROMTAIL,
    PROMTAIL,
    GRAFANA,
]


def _id(service: Service) -> str:
    return f"{service.name}[{service.labels.get('app.kubernetes.io/component', '')}]"


# -- the contract ------------------------------------------------------------------------


def test_honours_the_detector_contract() -> None:
    check_detector(LokiDetector, ALL_SAMPLES)


# -- the prefilter: discovery calls detect() only for the Services it admits -------------

UNRELATED = [
    # Bitnami redis and postgresql, labelled as Helm renders them.
    make_service(
        "shop-redis-master",
        "shop",
        labels={
            "app.kubernetes.io/component": "master",
            "app.kubernetes.io/instance": "shop-redis",
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/name": "redis",
            "app.kubernetes.io/version": "7.2.5",
            "helm.sh/chart": "redis-19.6.4",
        },
        annotations={"meta.helm.sh/release-name": "shop-redis"},
        ports=[(6379, "tcp-redis")],
    ),
    make_service(
        "shop-postgresql",
        "shop",
        labels={
            "app.kubernetes.io/component": "primary",
            "app.kubernetes.io/instance": "shop-postgresql",
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/name": "postgresql",
            "app.kubernetes.io/version": "16.3.0",
            "helm.sh/chart": "postgresql-15.5.20",
        },
        annotations={"meta.helm.sh/release-name": "shop-postgresql"},
        ports=[(5432, "tcp-postgresql")],
    ),
    # Loki's neighbours, with Loki's port names and components.
    PROMTAIL,
    GRAFANA,
    make_service(
        "enterprise-logs-query-frontend",
        NS,
        labels={
            "app.kubernetes.io/name": "enterprise-logs",
            "app.kubernetes.io/component": "query-frontend",
            "helm.sh/chart": "loki-6.16.0",
        },
        ports=LOKI_PORTS,
    ),
]


@pytest.mark.parametrize("service", UNRELATED, ids=_id)
def test_the_prefilter_keeps_unrelated_services_out(service: Service) -> None:
    assert LokiDetector.prefilter is not None
    assert not LokiDetector.prefilter.admits(service)


@pytest.mark.parametrize("prefer", ["direct", "gateway"])
def test_the_prefilter_admits_every_service_the_detector_matches(prefer: str) -> None:
    # check_detector runs the default settings only: the gateway matches too.
    matched = [s for s in ALL_SAMPLES if run_detector(LokiDetector, s, {"prefer": prefer})]
    assert len(matched) == (1 if prefer == "gateway" else 6)
    assert LokiDetector.prefilter is not None
    assert all(LokiDetector.prefilter.admits(s) for s in matched)


def test_the_prefilter_admits_a_service_refused_for_its_tenant() -> None:
    annotated = attrs.evolve(READ, annotations={TENANT_ANNOTATION: "a b"})
    with pytest.raises(InvalidService):
        run_detector(LokiDetector, annotated)
    assert LokiDetector.prefilter is not None
    assert LokiDetector.prefilter.admits(annotated)


def test_contract_check_catches_a_broken_variant() -> None:
    # Guards the test above: the same kit must reject a detector that breaks the rules.
    class Trailing(LokiDetector):
        def detect(self, service: Service, ctx: Any) -> Any:
            found = super().detect(service, ctx)
            return None if found is None else attrs.evolve(found, endpoint=found.endpoint + "/")

    with pytest.raises(AssertionError, match="without trailing /"):
        check_detector(Trailing, [READ])


# -- what it finds -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "endpoint", "component"),
    [
        (SINGLE_BINARY, "http://loki.logging.svc.cluster.local:3100", "single-binary"),
        (SINGLE_BINARY_COMPONENT, "http://loki.logging.svc.cluster.local:3100", "single-binary"),
        (READ, "http://loki-read.logging.svc.cluster.local:3100", "read"),
        (
            QUERY_FRONTEND,
            "http://loki-query-frontend.logging.svc.cluster.local:3100",
            "query-frontend",
        ),
        (LEGACY, "http://loki.logging.svc.cluster.local:3100", "single-binary"),
        (
            DISTRIBUTED_QF,
            "http://loki-loki-distributed-query-frontend.logging.svc.cluster.local:3100",
            "query-frontend",
        ),
        (
            BITNAMI_QF,
            "http://grafana-loki-query-frontend.logging.svc.cluster.local:3100",
            "query-frontend",
        ),
    ],
    ids=lambda v: _id(v) if isinstance(v, Service) else "",
)
def test_finds_the_query_endpoint(service: Service, endpoint: str, component: str) -> None:
    found = run_detector(LokiDetector, service)
    assert found is not None
    assert found.detector == "loki"
    assert found.type == "loki"
    assert found.endpoint == endpoint
    assert found.health_path == "/ready"
    assert found.metadata["component"] == component
    (spec,) = found.toolsets
    assert spec.kind == "grafana/loki"
    assert spec.config == {"api_url": endpoint}


@pytest.mark.parametrize(
    "service",
    [*CHART_NEAR_MISSES, GATEWAY, LEGACY_HEADLESS, BITNAMI_PROMTAIL, PROMTAIL, GRAFANA],
    ids=_id,
)
def test_ignores_everything_else(service: Service) -> None:
    assert run_detector(LokiDetector, service) is None


def test_a_query_component_without_an_http_port_is_not_guessed() -> None:
    grpc_only = make_service("loki-read", NS, labels=chart_labels("read"), ports=[(9095, "grpc")])
    assert run_detector(LokiDetector, grpc_only) is None


def test_an_unlabelled_headless_service_is_not_taken_for_the_single_binary() -> None:
    # Same labels and ports as the single-binary Service, but headless: a
    # discovery/gossip Service of the release, not the query endpoint.
    peers = make_service(
        "loki-peers", NS, labels=chart_labels(), ports=LOKI_PORTS, cluster_ip=HEADLESS
    )
    assert run_detector(LokiDetector, peers) is None
    assert run_detector(LokiDetector, SINGLE_BINARY) is not None


def test_external_name_services_are_ignored() -> None:
    external = make_service(
        "loki",
        NS,
        labels=chart_labels(),
        ports=LOKI_PORTS,
        service_type="ExternalName",
        cluster_ip="",
    )
    assert run_detector(LokiDetector, external) is None


def test_https_port_gives_an_https_endpoint() -> None:
    tls = make_service("loki-read", NS, labels=chart_labels("read"), ports=[(3100, "https")])
    found = run_detector(LokiDetector, tls)
    assert found is not None
    assert found.endpoint == "https://loki-read.logging.svc.cluster.local:3100"


def test_uses_the_configured_cluster_domain_and_health_path() -> None:
    found = run_detector(LokiDetector, READ, cluster_domain="k8s.example", health_path="/metrics")
    assert found is not None
    assert found.endpoint == "http://loki-read.logging.svc.k8s.example:3100"
    assert found.health_path == "/metrics"


# -- settings ----------------------------------------------------------------------------


def test_prefer_gateway_swaps_the_direct_services_for_the_gateway() -> None:
    config = {"prefer": "gateway"}
    found = run_detector(LokiDetector, GATEWAY, config)
    assert found is not None
    assert found.endpoint == "http://loki-gateway.logging.svc.cluster.local:80"
    # The chart's nginx answers "/" itself; Loki's /ready is not proxied.
    assert found.health_path == "/"
    assert found.metadata["component"] == "gateway"
    for direct in (SINGLE_BINARY, SINGLE_BINARY_COMPONENT, READ, QUERY_FRONTEND, BITNAMI_QF):
        assert run_detector(LokiDetector, direct, config) is None, direct.name


def test_a_configured_health_path_wins_over_the_gateway_default() -> None:
    found = run_detector(LokiDetector, GATEWAY, {"prefer": "gateway"}, health_path="/healthz")
    assert found is not None
    assert found.health_path == "/healthz"


def test_tenant_becomes_the_x_scope_orgid_header() -> None:
    found = run_detector(LokiDetector, READ, {"tenant": "team-a"})
    assert found is not None
    (spec,) = found.toolsets
    assert spec.config == {
        "api_url": "http://loki-read.logging.svc.cluster.local:3100",
        "additional_headers": {"X-Scope-OrgID": "team-a"},
    }


def test_several_tenants_joined_with_a_pipe_are_accepted() -> None:
    found = run_detector(LokiDetector, READ, {"tenant": "team-a|team-b"})
    assert found is not None
    assert found.toolsets[0].config["additional_headers"] == {"X-Scope-OrgID": "team-a|team-b"}


def test_annotation_overrides_the_tenant_per_service() -> None:
    annotated = make_service(
        "loki-read",
        NS,
        labels=chart_labels("read"),
        annotations={TENANT_ANNOTATION: "payments"},
        ports=LOKI_PORTS,
    )
    found = run_detector(LokiDetector, annotated, {"tenant": "team-a"})
    assert found is not None
    assert found.toolsets[0].config["additional_headers"] == {"X-Scope-OrgID": "payments"}


@pytest.mark.parametrize("bad", ["a b", "x\nX-Evil: 1", "..", "a||b", "t" * 151])
def test_an_invalid_tenant_annotation_skips_the_service_with_a_reason(bad: str) -> None:
    annotated = make_service(
        "loki-read",
        NS,
        labels=chart_labels("read"),
        annotations={TENANT_ANNOTATION: bad},
        ports=LOKI_PORTS,
    )
    with pytest.raises(InvalidService, match=f"annotation {TENANT_ANNOTATION} "):
        run_detector(LokiDetector, annotated)


def test_the_tenant_annotation_on_a_non_loki_service_is_ignored() -> None:
    other = make_service("web", NS, annotations={TENANT_ANNOTATION: "a b"}, ports=[(80, "http")])
    assert run_detector(LokiDetector, other) is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"prefer": "both"},
            "$.detectors.loki.config.prefer: expected one of 'direct', 'gateway', got 'both'",
        ),
        ({"tenant": 42}, "$.detectors.loki.config.tenant: expected str, got 42"),
        (
            {"tenant": "team a"},
            "$.detectors.loki.config.tenant: 'team a' is not a Loki tenant: use up to 150 "
            "letters, digits and ! - _ . * ' ( ), or several joined with '|'",
        ),
        (
            {"tenants": "a"},
            "$.detectors.loki.config.tenants: unknown key; expected one of: prefer, tenant",
        ),
    ],
)
def test_bad_settings_are_reported_as_users_see_them(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_detector(LokiDetector, READ, config)
    assert str(info.value).splitlines()[1:] == [f"  {message}"]


# -- with the engine, the built-ins and the renderers -------------------------------------


def _cluster() -> list[Service]:
    prometheus = make_service(
        "prometheus-server",
        "monitoring",
        labels={"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
        ports=[(80, "http")],
    )
    return [*ALL_SAMPLES, prometheus]


def test_engine_writes_a_holmesgpt_loki_toolset(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("detectors:\n  loki:\n    config:\n      tenant: team-a\n", encoding="utf-8")
    engine = Engine.load(config, plugins=make_plugin_set(LokiDetector))
    cycle = engine.cycle(_cluster(), formats=["holmesgpt"], configmap=False)
    result = cycle.discovery

    # One Loki per release; no built-in detector takes any Service of a Loki
    # chart (near misses included), and Loki does not take Grafana's.
    assert {d.key: d.detector for d in result.discovered} == {
        "logging/loki": "loki",
        "logging/loki-read": "loki",
        "logging/loki-query-frontend": "loki",
        "logging/loki-loki-distributed-query-frontend": "loki",
        "logging/grafana-loki-query-frontend": "loki",
        "logging/loki-grafana": "grafana",
        "monitoring/prometheus-server": "prometheus",
    }

    document = yaml.safe_load(cycle.documents["custom_toolset.yaml"])
    loki = document["toolsets"]["grafana/loki"]
    assert loki["enabled"] is True
    instances = {i["name"]: i for i in loki["config"]["instances"]}
    assert instances["logging/loki-read"] == {
        "name": "logging/loki-read",
        "api_url": "http://loki-read.logging.svc.cluster.local:3100",
        "additional_headers": {"X-Scope-OrgID": "team-a"},
    }
    assert "prometheus/metrics" in document["toolsets"]


def test_engine_with_prefer_gateway_lists_only_gateways(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("detectors:\n  loki:\n    config:\n      prefer: gateway\n", encoding="utf-8")
    engine = Engine.load(config, plugins=make_plugin_set(LokiDetector))
    result = engine.discover(_cluster())
    loki = [d for d in result.discovered if d.detector == "loki"]
    assert [(d.key, d.endpoint, d.health_path) for d in loki] == [
        ("logging/loki-gateway", "http://loki-gateway.logging.svc.cluster.local:80", "/")
    ]


def test_engine_reports_a_bad_setting_from_the_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("detectors:\n  loki:\n    config:\n      prefer: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\$\.detectors\.loki\.config\.prefer: expected one of"):
        Engine.load(config, plugins=make_plugin_set(LokiDetector))


def test_invalid_service_is_skipped_with_its_reason() -> None:
    engine = Engine.load(None, plugins=make_plugin_set(LokiDetector))
    annotated = make_service(
        "loki-read",
        NS,
        labels=chart_labels("read"),
        annotations={TENANT_ANNOTATION: "not ok"},
        ports=LOKI_PORTS,
    )
    result = engine.discover([annotated])
    assert result.discovered == []
    assert result.skip_counts["invalid"] == 1
    (skip,) = result.skips
    assert TENANT_ANNOTATION in str(skip)


# -- packaging -----------------------------------------------------------------------------


def test_installed_distribution_registers_the_entry_point() -> None:
    check_entry_point("dyntoolset-loki", LokiDetector)


def test_pinning_other_distributions_leaves_loki_out() -> None:
    plugins = load_plugins(environ={"DYNTOOLSET_LOAD_PLUGINS": "some-other-plugin"})
    assert "loki" not in plugins.detectors
    assert "prometheus" in plugins.detectors  # the built-ins always load


def test_a_second_distribution_claiming_loki_is_reported_with_both_names(tmp_path: Path) -> None:
    impostor = fake_distribution(tmp_path, "acme-loki", {"loki": "acme_loki"})
    ours = importlib.metadata.distribution("dyntoolset-loki")
    specs, errors = find_plugins([ours, impostor])
    assert specs == []
    (error,) = errors
    assert "acme-loki" in str(error)
    assert "dyntoolset-loki" in str(error)


def test_a_detector_name_clash_between_plugins_names_both(tmp_path: Path) -> None:
    source = (
        "from dyntoolset.plugin import Detector, hookimpl\n"
        "DYNTOOLSET_PLUGIN_API = '2'\n"
        "class Other(Detector):\n"
        "    name = 'loki'\n"
        "    def detect(self, service, ctx):\n"
        "        return None\n"
        "@hookimpl\n"
        "def register_detectors():\n"
        "    return [Other]\n"
    )
    other = fake_distribution(
        tmp_path, "acme-logs", {"acme": "acme_logs"}, modules={"acme_logs": source}
    )
    ours = importlib.metadata.distribution("dyntoolset-loki")
    with on_sys_path(tmp_path):
        specs, errors = find_plugins([ours, other])
        assert errors == []
        plugins = load_plugins(specs)
    assert plugins.detectors["loki"].distribution == "acme-logs"  # "acme" sorts first
    (failure,) = plugins.failures
    assert "dyntoolset-loki" in str(failure) and "acme-logs" in str(failure)
