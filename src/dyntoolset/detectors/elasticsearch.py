"""The ``elasticsearch`` detector: the Elasticsearch REST API.

Matches ECK's ``<name>-es-http``, the elastic/elasticsearch chart's
``<cluster>-<nodeGroup>`` Service and Bitnami elasticsearch's client-facing
Service. Transport Services and ports (9300), headless per-node-set Services,
ECK's ``-es-internal-http`` (the operator's own copy of ``-es-http``), Kibana,
exporters and metrics Services are ignored. See ``docs/detectors.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from dyntoolset.credentials import AUTH_KEYS, CredentialSettings
from dyntoolset.detector import DetectContext, Detector, scheme_for
from dyntoolset.detectors._common import (
    APP,
    LEGACY_CHART,
    NAME,
    BuiltinDetector,
    component_label,
    from_chart,
)
from dyntoolset.hookspecs import PLUGIN_API_VERSION, hookimpl
from dyntoolset.model import Discovered, Port, Service, ToolsetSpec
from dyntoolset.prefilter import Prefilter
from dyntoolset.toolsets import elasticsearch_toolsets

# ECK labels every Service of a cluster with this type (Kibana: "kibana",
# APM Server: "apm-server", ...) and names the user-facing one <name>-es-http.
_ECK_TYPE = "common.k8s.elastic.co/type"
_ECK_HTTP_SUFFIX = "-es-http"
# elastic/helm-charts elasticsearch: labels ``chart: elasticsearch``,
# ``app: <clusterName>-<nodeGroup>``; plus ``<...>-headless`` (clusterIP None).
# Its 8.x releases serve HTTPS by default (``protocol: https``, certificates
# made by the chart), 7.x plain HTTP; the port is named ``http`` in both. The
# chart's own label carries no version, so a version is only known when the
# label was given one (``chart: elasticsearch-7.17.3``, through service.labels).
_ELASTIC_CHART = "elasticsearch"
_ELASTIC_CHART_TLS_MAJOR = 8
# Bitnami elasticsearch: the main Service carries component "master" or
# "coordinating-only"; "metrics" is the exporter; data/ingest Services are
# per-role extras (headless ``-hl`` or optional).
_CLIENT_COMPONENTS = frozenset({"", "master", "coordinating-only", "coordinating", "client"})
# ECK: ``https`` (or ``http`` with TLS disabled) 9200; elastic chart: ``http`` 9200;
# Bitnami: ``tcp-rest-api`` 9200. No fallback to the first port: it may be
# transport (9300), which speaks the binary node-to-node protocol.
_PORT_NAMES = ("https", "http", "rest", "tcp-rest-api", "rest-api", "http-rest")
_PORT_NUMBERS = (9200,)


@attrs.frozen
class ElasticsearchSettings(CredentialSettings):
    """Options of the ``elasticsearch`` detector (``detectors.elasticsearch.config``).

    Besides ``elastic_chart_protocol``, the credential fields of
    :class:`~dyntoolset.credentials.CredentialSettings` that HolmesGPT's
    Elasticsearch toolsets take: ``password_env`` (basic auth as
    ``elastic``, the superuser of ECK's and the elastic chart's default
    install, unless ``username`` or ``username_env`` says otherwise) or
    ``api_key_env``, and ``verify_ssl: false`` for their self-signed CA.
    """

    auth_keys = AUTH_KEYS["elasticsearch/cluster"]
    default_username = "elastic"

    #: The scheme of Services of the elastic/elasticsearch Helm chart, whose
    #: labels rarely show its version: ``auto`` is ``http`` for a chart label
    #: showing 7.x (or older) and ``https`` otherwise (8.x, the chart's last
    #: major, serves HTTPS by default). Set ``http`` for 8.x installs with
    #: ``protocol: http``.
    elastic_chart_protocol: Literal["auto", "http", "https"] = "auto"


def _elastic_chart_major(labels: Mapping[str, str]) -> int | None:
    """``0`` for an elastic/elasticsearch chart Service of unknown version, its major
    version when the ``chart`` label shows one, ``None`` for anything else."""
    value = labels.get(LEGACY_CHART)
    if not value or APP not in labels:
        return None
    if value == _ELASTIC_CHART:
        return 0
    if from_chart({LEGACY_CHART: value}, _ELASTIC_CHART):
        major = value[len(_ELASTIC_CHART) + 1 :].split(".", 1)[0]
        return int(major) if major.isdigit() else None
    return None


def _is_elasticsearch(service: Service) -> bool:
    labels = service.labels
    eck_type = labels.get(_ECK_TYPE)
    if eck_type is not None:
        return eck_type == "elasticsearch" and service.name.endswith(_ECK_HTTP_SUFFIX)
    if _elastic_chart_major(labels) is not None:
        return True
    if (labels.get(NAME) or labels.get(APP)) == "elasticsearch" or from_chart(
        labels, "elasticsearch"
    ):
        # The chart label also finds Bitnami elasticsearch with a nameOverride
        # (its name label is then the override).
        return component_label(labels) in _CLIENT_COMPONENTS
    return False


class ElasticsearchDetector(BuiltinDetector[ElasticsearchSettings]):
    """Finds Elasticsearch REST endpoints; writes ``elasticsearch/cluster`` and ``/data`` toolsets."""

    name = "elasticsearch"
    description = "Elasticsearch"
    default_priority = 4
    health_path = "/_cluster/health"
    Settings = ElasticsearchSettings
    # The ways _is_elasticsearch() says yes: ECK's type label, the elastic
    # chart's ``chart`` label (bare or versioned), the name label, or a
    # chart label of the elasticsearch chart (Bitnami with a nameOverride).
    prefilter = Prefilter(
        label_values={
            _ECK_TYPE: ["elasticsearch"],
            LEGACY_CHART: [_ELASTIC_CHART],
            NAME: ["elasticsearch"],
            APP: ["elasticsearch"],
        },
        charts=[_ELASTIC_CHART],
    )

    def detect(
        self, service: Service, ctx: DetectContext[ElasticsearchSettings]
    ) -> Discovered | None:
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
        return self.discovered(service, port, ctx, scheme=self._scheme(service, port, ctx))

    def toolsets(
        self, found: Discovered, settings: ElasticsearchSettings
    ) -> tuple[ToolsetSpec, ...]:
        """``elasticsearch/cluster`` and ``/data``, with the credentials that are configured."""
        return elasticsearch_toolsets(found, credentials=settings)

    @staticmethod
    def _scheme(
        service: Service, port: Port, ctx: DetectContext[ElasticsearchSettings]
    ) -> str | None:
        """The elastic chart's scheme by version or setting; ``None``: the usual rules."""
        major = _elastic_chart_major(service.labels)
        if major is None or scheme_for(port, service) == "https":
            return None
        wanted = ctx.settings.elastic_chart_protocol
        if wanted != "auto":
            return wanted
        return "http" if 0 < major < _ELASTIC_CHART_TLS_MAJOR else "https"


#: Built-ins are plugins like any other and declare the API they use.
DYNTOOLSET_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`ElasticsearchDetector`."""
    return [ElasticsearchDetector]
