"""A realistic synthetic cluster: 50,000 Services as ``kubectl get svc -A -o json`` prints them.

Most Services are unrelated workloads installed by Helm charts (the
``app.kubernetes.io/*`` and ``helm.sh/chart`` labels, ``meta.helm.sh``
annotations, ClusterIP fields as the API server fills them in); a few hundred
are observability backends, copied from the shapes of ``examples/cluster``
(kube-prometheus-stack, Thanos, Grafana, Jaeger, Elasticsearch, Loki, the
plugins' backends, annotated Services) and renamed into other namespaces.
Namespaces number about 2,000, named ``<team>-<environment>``.

Deterministic for a given ``count`` and ``seed``.
"""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path
from typing import Any

from dyntoolset.manifests import read_manifests

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster"

#: The share of observability Services (a few hundred in 50,000).
OBSERVABILITY_PER_MILLE = 8
ENVIRONMENTS = ("prod", "staging", "dev", "qa")
TEAMS = 500  # x 4 environments = 2,000 namespaces

#: (chart, version, app version, component, ports) of unrelated workloads.
_CHARTS: tuple[tuple[str, str, str, str, tuple[tuple[str, int, str], ...]], ...] = (
    ("redis", "19.6.4", "7.2.5", "master", (("tcp-redis", 6379, "redis"),)),
    ("postgresql", "15.5.20", "16.3.0", "primary", (("tcp-postgresql", 5432, "tcp-postgresql"),)),
    ("mysql", "11.1.14", "8.4.2", "primary", (("mysql", 3306, "mysql"),)),
    ("nginx", "18.1.7", "1.27.0", "server", (("http", 80, "http"), ("https", 443, "https"))),
    ("mongodb", "15.6.16", "7.0.12", "mongodb", (("mongodb", 27017, "mongodb"),)),
    ("memcached", "7.4.10", "1.6.29", "memcached", (("memcache", 11211, "memcache"),)),
    ("keycloak", "22.1.0", "25.0.2", "keycloak", (("http", 80, "http"),)),
    (
        "minio",
        "14.6.25",
        "2024.7.16",
        "minio",
        (("minio-api", 9000, "minio-api"), ("minio-console", 9001, "minio-console")),
    ),
    ("argo-cd", "7.3.11", "v2.11.7", "server", (("http", 80, "8080"), ("https", 443, "8080"))),
    (
        "cert-manager",
        "v1.15.1",
        "v1.15.1",
        "controller",
        (("tcp-prometheus-servicemonitor", 9402, "9402"),),
    ),
    ("external-dns", "1.14.5", "0.14.2", "external-dns", (("http", 7979, "http"),)),
    ("app-template", "3.3.2", "1.0.0", "api", (("http", 8080, "http"), ("grpc", 9000, "grpc"))),
    ("app-template", "3.3.2", "1.0.0", "worker", (("http-metrics", 8081, "metrics"),)),
    ("app-template", "3.3.2", "1.0.0", "web", (("http", 80, "http"),)),
)
_APPS = (
    "checkout",
    "cart",
    "payments",
    "orders",
    "inventory",
    "search",
    "catalog",
    "users",
    "auth",
    "billing",
    "shipping",
    "notifications",
    "recommendations",
    "reviews",
    "pricing",
    "ledger",
    "gateway",
    "frontend",
    "backend",
    "reports",
    "analytics",
    "ingest",
    "export",
)


def namespaces() -> list[str]:
    """The ~2,000 namespace names, ``<team>-<environment>``."""
    return [f"team{team:03d}-{env}" for team in range(TEAMS) for env in ENVIRONMENTS]


def _observability_shapes() -> list[dict[str, Any]]:
    return [o.obj for o in read_manifests([str(EXAMPLE)]).objects if o.kind == "Service"]


def _uid(rng: random.Random, index: int) -> str:
    return f"{rng.getrandbits(32):08x}-{index % 65536:04x}-4{index % 4096:03x}-a{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}"


def _unrelated(rng: random.Random, index: int, namespace: str) -> dict[str, Any]:
    chart, chart_version, app_version, component, ports = rng.choice(_CHARTS)
    app = rng.choice(_APPS) if chart == "app-template" else chart
    release = f"{rng.choice(_APPS)}-{chart}" if chart != "app-template" else app
    name = f"{release}-{component}-{index}"
    ip = f"10.{96 + index // 65536 % 8}.{index // 256 % 256}.{index % 256}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "annotations": {
                "meta.helm.sh/release-name": release,
                "meta.helm.sh/release-namespace": namespace,
            },
            "creationTimestamp": f"2026-09-14T08:{index // 60 % 60:02d}:{index % 60:02d}Z",
            "labels": {
                "app.kubernetes.io/component": component,
                "app.kubernetes.io/instance": release,
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/name": app,
                "app.kubernetes.io/version": app_version,
                "helm.sh/chart": f"{chart}-{chart_version}",
            },
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(100000 + index),
            "uid": _uid(rng, index),
        },
        "spec": {
            "clusterIP": ip,
            "clusterIPs": [ip],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [
                {
                    "name": port_name,
                    "port": port,
                    "protocol": "TCP",
                    "targetPort": int(target) if target.isdigit() else target,
                }
                for port_name, port, target in ports
            ],
            "selector": {
                "app.kubernetes.io/component": component,
                "app.kubernetes.io/instance": release,
                "app.kubernetes.io/name": app,
            },
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }


def _renamed(shape: dict[str, Any], index: int, namespace: str) -> dict[str, Any]:
    obj = copy.deepcopy(shape)
    metadata = obj["metadata"]
    old = f"{metadata['name']}.{metadata.get('namespace', 'default')}"
    metadata["namespace"] = namespace
    metadata["name"] = f"{metadata['name']}-{index}"
    metadata["resourceVersion"] = str(100000 + index)
    metadata["uid"] = f"00000000-0000-4000-8000-{index:012d}"
    new = f"{metadata['name']}.{namespace}"
    # Annotations naming the Service's own DNS name must follow the rename.
    annotations = metadata.get("annotations") or {}
    for key, value in annotations.items():
        if isinstance(value, str) and old in value:
            annotations[key] = value.replace(old, new)
    return obj


def cluster_objects(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` Service objects: mostly Helm workloads, about 0.8% observability backends."""
    rng = random.Random(seed)
    shapes = _observability_shapes()
    spaces = namespaces()
    objects = []
    for index in range(count):
        namespace = spaces[rng.randrange(len(spaces))]
        if rng.randrange(1000) < OBSERVABILITY_PER_MILLE:
            objects.append(_renamed(rng.choice(shapes), index, namespace))
        else:
            objects.append(_unrelated(rng, index, namespace))
    return objects


def service_list(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """``objects`` wrapped as ``kubectl get svc -A -o json`` prints them."""
    return {
        "apiVersion": "v1",
        "items": objects,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }


def write_service_list(path: Path, count: int, seed: int = 7) -> Path:
    """Write the List of ``count`` Services to ``path`` with kubectl's 4-space indentation."""
    path.write_text(json.dumps(service_list(cluster_objects(count, seed)), indent=4) + "\n")
    return path


def cached_service_list(count: int, seed: int = 7) -> Path:
    """The List of ``count`` Services as a compact JSON file, generated once and kept.

    Kept in ``benchmarks/.cache/`` (ignored by git) so that each workload
    process does not pay the generation again. Compact like ``kubectl get -o
    json | jq -c``: 50,000 Services are about 55 MB.
    """
    cache = Path(__file__).resolve().parent / ".cache"
    cache.mkdir(exist_ok=True)
    path = cache / f"services-{count}-{seed}.json"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(service_list(cluster_objects(count, seed))) + "\n")
        partial.replace(path)  # atomic: a concurrent run never reads half a file
    return path
