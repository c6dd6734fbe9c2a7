"""Discovered services for the renderer tests, built directly (no detectors).

A plain module with a unique name (not conftest.py) so test modules can import
it without clashing with other directories' helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from dyntoolset.model import Discovered, Port, Service, ToolsetSpec
from dyntoolset.toolsets import http_toolset

DOMAIN = "cluster.local"


def found(
    name: str,
    namespace: str,
    detector: str,
    *,
    port: int,
    port_name: str = "http",
    kinds: Mapping[str, Mapping[str, Any]] | None = None,
    http: bool = False,
    type_: str | None = None,
    endpoint: str | None = None,
    description: str = "",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    health_path: str = "/",
) -> Discovered:
    """A Discovered as a detector would build it.

    ``kinds`` maps built-in toolset kinds to their config; ``{url}`` in a
    config value is replaced by the endpoint. ``http`` adds the generic HTTP
    toolset made by :func:`dyntoolset.toolsets.http_toolset`.
    """
    service = Service(
        name=name,
        namespace=namespace,
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        ports=(Port(port=port, name=port_name),),
        cluster_ip="10.0.0.1",
    )
    url = endpoint or f"http://{service.dns_name(DOMAIN)}:{port}"
    base = Discovered(
        service=service,
        detector=detector,
        type=type_ or detector,
        endpoint=url,
        health_path=health_path,
        port=service.ports[0],
        description=description,
        metadata={"app": (labels or {}).get("app.kubernetes.io/name", name)},
    )
    specs = [
        ToolsetSpec(kind=kind, config={k: v.replace("{url}", url) for k, v in cfg.items()})
        for kind, cfg in (kinds or {}).items()
    ]
    if http:
        specs.append(http_toolset(base))
    return attrs.evolve(base, toolsets=tuple(specs))


def realistic() -> list[Discovered]:
    """What a busy cluster yields: two Prometheus, Grafana, two Elasticsearch,
    Loki, Tempo, Jaeger, and custom services (two of one type)."""
    items = [
        found(
            "kube-prometheus-stack-prometheus",
            "monitoring",
            "prometheus",
            port=9090,
            port_name="http-web",
            kinds={"prometheus/metrics": {"prometheus_url": "{url}"}},
            health_path="/-/healthy",
        ),
        found(
            "prometheus",
            "team-a",
            "prometheus",
            port=9090,
            port_name="web",
            kinds={"prometheus/metrics": {"prometheus_url": "{url}"}},
            health_path="/-/healthy",
        ),
        found(
            "kube-prometheus-stack-grafana",
            "monitoring",
            "grafana",
            port=80,
            port_name="http-web",
            kinds={
                "grafana/dashboards": {
                    "api_url": "{url}",
                    "api_key": "{{ env.GRAFANA_API_KEY }}",
                }
            },
            health_path="/api/health",
        ),
        found(
            "elasticsearch-master",
            "logging",
            "elasticsearch",
            port=9200,
            kinds={
                "elasticsearch/cluster": {"api_url": "{url}"},
                "elasticsearch/data": {"api_url": "{url}"},
            },
            health_path="/_cluster/health",
        ),
        found(
            "quickstart-es-http",
            "search",
            "elasticsearch",
            port=9200,
            endpoint="https://quickstart-es-http.search.svc.cluster.local:9200",
            kinds={
                "elasticsearch/cluster": {"api_url": "{url}"},
                "elasticsearch/data": {"api_url": "{url}"},
            },
            health_path="/_cluster/health",
        ),
        found(
            "loki-gateway",
            "logging",
            "loki",
            port=80,
            kinds={"grafana/loki": {"api_url": "{url}"}},
            health_path="/ready",
        ),
        found(
            "tempo",
            "tracing",
            "tempo",
            port=3200,
            kinds={"grafana/tempo": {"api_url": "{url}"}},
            health_path="/ready",
        ),
        found(
            "jaeger-query",
            "tracing",
            "jaeger",
            port=16686,
            port_name="http-query",
            http=True,
            description="Jaeger query",
        ),
        found(
            "billing-api",
            "payments",
            "custom",
            type_="billing",
            port=8080,
            http=True,
            endpoint="http://billing-api.payments.svc.cluster.local:8080/api",
            annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "billing"},
        ),
        found(
            "inventory",
            "shop-eu",
            "custom",
            type_="inventory",
            port=8080,
            http=True,
            annotations={"kubernaut.io/toolset": "true", "kubernaut.io/toolset-type": "inventory"},
        ),
        found(
            "inventory",
            "shop-us",
            "custom",
            type_="inventory",
            port=8080,
            http=True,
            annotations={"kubernaut.io/toolset": "true", "kubernaut.io/toolset-type": "inventory"},
        ),
    ]
    return sorted(items, key=lambda d: d.key)


#: Strings that break naive YAML/JSON templating, prompts or parsers; shared by the
#: renderer property tests (mixed with generated text there).
HOSTILE_TEXT = [
    "",
    " ",
    "\n",
    "a\nb",
    ": ",
    "key: value",
    "# comment",
    "- item",
    "!!python/object/apply:os.system ['id']",
    "!!binary aGk=",
    "&anchor",
    "*anchor",
    "<<: *anchor",
    "---",
    "...",
    "{a: 1}",
    "[1, 2]",
    "null",
    "~",
    "yes",
    "0x1F",
    "1e3",
    "'",
    '"',
    "\\",
    "%YAML 1.1",
    "\t",
    "\r\n",
    "\x00\x07\x1b",
    "\x85\u2028\u2029",
    "\ufeff",
    "\u202e",
    "{{ env.HOME }}",
    "{{env.PATH}}",
    "{ {{ env.X }} }",
    "é 中文 🙂",
    "\uff50\uff52\uff4f\uff4d\uff45\uff54\uff48\uff45\uff55\uff53",  # fullwidth "prometheus"
    "pr\u043emetheus",  # Cyrillic o
    "x" * 10240,
    "- a\n- b",
    "\t tab",
    "\ud800",
    "{{{{env.PATH}}}}",
]
