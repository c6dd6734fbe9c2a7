"""The ``elasticsearch`` detector: the Elasticsearch REST API.

Matches ECK's ``<name>-es-http``, the elastic/elasticsearch chart's
``<cluster>-<nodeGroup>`` Service and Bitnami elasticsearch's client-facing
Service. Transport Services and ports (9300), headless per-node-set Services,
ECK's ``-es-internal-http`` (the operator's own copy of ``-es-http``), Kibana,
exporters and metrics Services are ignored. See ``docs/detectors.md``.
"""

from __future__ import annotations

from typing import Any

from dyntoolset.detector import DetectContext, Detector, NoSettings
from dyntoolset.detectors._common import (
    APP,
    NAME,
    BuiltinDetector,
    component_label,
    from_chart,
)
from dyntoolset.hookspecs import hookimpl
from dyntoolset.model import Discovered, Service

# ECK labels every Service of a cluster with this type (Kibana: "kibana",
# APM Server: "apm-server", ...) and names the user-facing one <name>-es-http.
_ECK_TYPE = "common.k8s.elastic.co/type"
_ECK_HTTP_SUFFIX = "-es-http"
# elastic/helm-charts elasticsearch: labels ``chart: elasticsearch``,
# ``app: <clusterName>-<nodeGroup>``; plus ``<...>-headless`` (clusterIP None).
_ELASTIC_CHART = "elasticsearch"
# Bitnami elasticsearch: the main Service carries component "master" or
# "coordinating-only"; "metrics" is the exporter; data/ingest Services are
# per-role extras (headless ``-hl`` or optional).
_CLIENT_COMPONENTS = frozenset({"", "master", "coordinating-only", "coordinating", "client"})
# ECK: ``https`` (or ``http`` with TLS disabled) 9200; elastic chart: ``http`` 9200;
# Bitnami: ``tcp-rest-api`` 9200. No fallback to the first port: it may be
# transport (9300), which speaks the binary node-to-node protocol.
_PORT_NAMES = ("https", "http", "rest", "tcp-rest-api", "rest-api", "http-rest")
_PORT_NUMBERS = (9200,)


def _is_elasticsearch(service: Service) -> bool:
    labels = service.labels
    eck_type = labels.get(_ECK_TYPE)
    if eck_type is not None:
        return eck_type == "elasticsearch" and service.name.endswith(_ECK_HTTP_SUFFIX)
    if labels.get("chart") == _ELASTIC_CHART and APP in labels:
        return True
    if (labels.get(NAME) or labels.get(APP)) == "elasticsearch" or from_chart(
        labels, "elasticsearch"
    ):
        # The chart label also finds Bitnami elasticsearch with a nameOverride
        # (its name label is then the override).
        return component_label(labels) in _CLIENT_COMPONENTS
    return False


class ElasticsearchDetector(BuiltinDetector[NoSettings]):
    """Finds Elasticsearch REST endpoints; writes ``elasticsearch/cluster`` and ``/data`` toolsets."""

    name = "elasticsearch"
    description = "Elasticsearch"
    default_priority = 4
    health_path = "/_cluster/health"

    def detect(self, service: Service, ctx: DetectContext[NoSettings]) -> Discovered | None:
        """Return the REST endpoint if ``service`` is an Elasticsearch client Service."""
        if not service.labels or not service.ports or service.type == "ExternalName":
            return None
        if not _is_elasticsearch(service):
            return None
        # Governing Services: ECK's per-node-set <name>-es-<set> and
        # -es-transport, the elastic chart's -headless, Bitnami's -hl.
        if service.is_headless:
            return None
        port = service.port_named(*_PORT_NAMES) or service.port_numbered(*_PORT_NUMBERS)
        if port is None:
            return None
        return self.discovered(service, port, ctx)


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`ElasticsearchDetector`."""
    return [ElasticsearchDetector]
