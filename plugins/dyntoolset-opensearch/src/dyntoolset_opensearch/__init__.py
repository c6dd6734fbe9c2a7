"""dyntoolset-opensearch: a detector plugin that finds OpenSearch clusters.

HolmesGPT 0.45's ``opensearch/query_assist`` takes no server at all (it only
suggests PPL queries, and needs ``OPENSEARCH_URL`` in its environment), while
its ``elasticsearch/cluster`` and ``elasticsearch/data`` toolsets are written
for "Elasticsearch/OpenSearch" and call only REST paths both serve
(``_cluster/health``, ``_cat``, ``_search``, ``_mapping`` ...). So each
OpenSearch cluster becomes an instance of those two toolsets.

It recognises the client Service of the opensearch-project/opensearch chart
(``opensearch-cluster-master`` by default), the Service the OpenSearch
operator builds for an ``OpenSearchCluster`` and Bitnami opensearch's
client-facing Service. Headless Services (``-headless``, the operator's
per-node-pool ones, Bitnami's ``-hl``), Bitnami's ingest, data, metrics and
dashboards Services, OpenSearch Dashboards and transport ports are never
matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from dyntoolset.plugin import (
    AUTH_KEYS,
    CredentialSettings,
    DetectContext,
    Detector,
    Discovered,
    Port,
    Prefilter,
    Service,
    ToolsetSpec,
    credential_config,
    hookimpl,
    scheme_for,
)

__version__ = "0.1.0"

# app.kubernetes.io/name of both charts' Services ("opensearch"); with
# nameOverride it holds the override, and helm.sh/chart still reads
# "opensearch-<version>" (OpenSearch Dashboards' reads "opensearch-dashboards-").
_NAME = "opensearch"
_CHART_PREFIXES = tuple(f"opensearch-{digit}" for digit in "0123456789")
# The OpenSearch operator labels an OpenSearchCluster's Services with the
# cluster's name; its per-node-pool (headless) ones add the node pool.
_OPERATOR_CLUSTER = "opster.io/opensearch-cluster"
_OPERATOR_NODE_POOL = "opster.io/opensearch-nodepool"
# Bitnami opensearch names its REST port "tcp-rest-api" on every Service
# that has one; the client-facing Service is "master", or "coordinating-only"
# when coordinating nodes exist. Its "ingest" Service (optional) feeds
# pipelines and is not the query endpoint.
_BITNAMI_PORT = "tcp-rest-api"
_BITNAMI_CLIENT_COMPONENTS = frozenset({"master", "coordinating-only"})
# Every component Bitnami labels its Services with; the opensearch-project
# chart's component is "<clusterName or nameOverride>-<nodeGroup>" instead.
_BITNAMI_COMPONENTS = _BITNAMI_CLIENT_COMPONENTS | {"data", "ingest", "dashboards", "metrics"}
# opensearch-project chart: "http" (service.httpPortName); operator: "http";
# Bitnami: "tcp-rest-api"; 9200 everywhere by default. No fallback to the
# first port: it may be transport (9300), metrics (9600) or rca (9650).
_PORT_NAMES = ("https", "http", _BITNAMI_PORT, "rest-api", "rest")
_PORT_NUMBERS = (9200,)

#: ``Discovered.metadata`` key: which install this is (``chart``, ``operator``, ``bitnami``).
FLAVOR_KEY = "flavor"


@attrs.frozen
class OpenSearchSettings(CredentialSettings):
    """Options of the ``opensearch`` detector (``detectors.opensearch.config``).

    The credential fields of :class:`~dyntoolset.plugin.CredentialSettings`
    that HolmesGPT's Elasticsearch toolsets take: ``password_env`` (basic
    auth as ``admin``, the user of the security plugin's default install,
    unless ``username`` or ``username_env`` says otherwise) or
    ``api_key_env``, and ``verify_ssl: false`` for the security plugin's demo
    certificates.
    """

    auth_keys = AUTH_KEYS["elasticsearch/cluster"]
    default_username = "admin"

    #: The scheme of the REST API. ``auto``: ``https`` for the
    #: opensearch-project chart and the operator (the security plugin is on,
    #: with TLS on the REST layer), ``http`` for Bitnami (its security plugin
    #: is off by default); a port named ``https`` or TLS annotations always
    #: mean ``https``.
    protocol: Literal["auto", "http", "https"] = "auto"


def _flavor(service: Service) -> str | None:
    """Which install ``service`` comes from; ``None`` when it is no OpenSearch Service."""
    labels = service.labels
    if _OPERATOR_CLUSTER in labels:
        return "operator"
    if labels.get("app.kubernetes.io/name") != _NAME and not labels.get(
        "helm.sh/chart", ""
    ).startswith(_CHART_PREFIXES):
        return None
    # Both charts are named "opensearch"; only Bitnami names its REST port
    # "tcp-rest-api" and its components by role.
    bitnami = (
        service.port_named(_BITNAMI_PORT) is not None
        or labels.get("app.kubernetes.io/component") in _BITNAMI_COMPONENTS
    )
    return "bitnami" if bitnami else "chart"


def _is_client_service(service: Service, flavor: str) -> bool:
    labels = service.labels
    if flavor == "operator":
        return _OPERATOR_NODE_POOL not in labels
    if flavor == "bitnami":
        return labels.get("app.kubernetes.io/component") in _BITNAMI_CLIENT_COMPONENTS
    return not service.name.endswith("-headless")


def _scheme(port: Port, service: Service, flavor: str, wanted: str) -> str:
    if wanted != "auto":
        return wanted
    if scheme_for(port, service) == "https":
        return "https"
    return "http" if flavor == "bitnami" else "https"


class OpenSearchDetector(Detector[OpenSearchSettings]):
    """Finds each OpenSearch cluster's REST API; writes ``elasticsearch/cluster`` and ``/data``."""

    name = "opensearch"
    version = __version__
    description = "OpenSearch (cluster health, indices, search)"
    # After the built-ins (1-5): a Service they claim is theirs.
    default_priority = 26
    # With the security plugin (on in the opensearch-project chart and the
    # operator) every REST path answers 401 without a login, and the REST
    # layer's certificate is the demo one: an HTTP check, which sends no
    # credentials and always verifies TLS, would drop every default install.
    # A TCP connect proves the node listens; health_check.kind: http with
    # this path (and health_checks.ca_file) suits installs without them.
    health_check = "tcp"
    health_path = "/_cluster/health"
    Settings = OpenSearchSettings
    # What _flavor() asks for, as data: detect() is called only for Services
    # meeting one of these (it matches nothing without one).
    prefilter = Prefilter(
        # The operator's Services, whatever their value.
        label_keys=(_OPERATOR_CLUSTER,),
        # Both charts' name label...
        label_values={"app.kubernetes.io/name": (_NAME,)},
        # ...or their chart label, for a release installed with nameOverride.
        label_prefixes={"helm.sh/chart": _CHART_PREFIXES},
    )

    def detect(self, service: Service, ctx: DetectContext[OpenSearchSettings]) -> Discovered | None:
        """Return the REST endpoint if ``service`` is an OpenSearch client Service."""
        if service.type == "ExternalName" or service.is_headless:
            return None
        flavor = _flavor(service)
        if flavor is None or not _is_client_service(service, flavor):
            return None
        port = service.port_named(*_PORT_NAMES) or service.port_numbered(*_PORT_NUMBERS)
        if port is None or port.protocol.upper() != "TCP":
            return None
        scheme = _scheme(port, service, flavor, ctx.settings.protocol)
        return self.discovered(service, port, ctx, scheme=scheme, metadata={FLAVOR_KEY: flavor})

    def toolsets(self, found: Discovered, settings: OpenSearchSettings) -> Sequence[ToolsetSpec]:
        """``elasticsearch/cluster`` and ``/data`` on the REST API, with the configured login."""
        config: Mapping[str, Any] = {
            "api_url": found.endpoint,
            **credential_config(settings, OpenSearchSettings.auth_keys),
        }
        where = f"OpenSearch {found.service.name} in namespace {found.service.namespace}"
        api = (
            f"{where} ({found.endpoint}) is OpenSearch, not Elasticsearch: it answers "
            "the same REST paths (_cluster/health, _cat, _search, _mapping). Read-only."
        )
        return (
            ToolsetSpec(
                kind="elasticsearch/cluster",
                config=dict(config),
                description=f"Cluster health of {where}",
                llm_instructions=f"{api} Cluster health, nodes, shard allocation, index statistics.",
            ),
            ToolsetSpec(
                kind="elasticsearch/data",
                config=dict(config),
                description=f"Indices and documents of {where}",
                llm_instructions=(
                    f"{api} List indices, read mappings and search documents "
                    "(application logs and events)."
                ),
            ),
        )


#: The plugin API this module was written for (dyntoolset.plugin.PLUGIN_API_VERSION):
#: 2.1 added CredentialSettings, 2.3 the detector prefilter; dyntoolset refuses
#: to load it when its own major version differs or its minor version is older.
DYNTOOLSET_PLUGIN_API = "2.3"


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`OpenSearchDetector` with dyntoolset."""
    return [OpenSearchDetector]
