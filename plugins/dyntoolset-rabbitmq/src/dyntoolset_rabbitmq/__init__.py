"""dyntoolset-rabbitmq: a detector plugin that finds RabbitMQ's management API.

Each RabbitMQ found becomes one cluster of HolmesGPT 0.45's ``rabbitmq/core``
toolset (``clusters: [{id, api_url, username, password, verify_ssl}]``);
several RabbitMQs are joined into one toolset (``combine_key="clusters"``).
The management API wants a login: ``detectors.rabbitmq.config`` takes the
shared credential keys (``username``/``username_env`` with
``password_env``, ``verify_ssl``); secrets are written as ``{{ env.NAME }}``.

It recognises the client Service the RabbitMQ cluster operator builds for a
``RabbitmqCluster`` (``<name>``, labels ``app.kubernetes.io/component`` and
``app.kubernetes.io/part-of`` both ``rabbitmq``) and the Bitnami rabbitmq
chart's Service (``<fullname>``, name label ``rabbitmq`` or, with
``nameOverride``, ``helm.sh/chart: rabbitmq-<version>``). The operator's
``<name>-nodes`` and the chart's ``<fullname>-headless`` Services, and
every Service without a management port, are never matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from dyntoolset.plugin import (
    AUTH_KEYS,
    CredentialSettings,
    DetectContext,
    Detector,
    Discovered,
    Prefilter,
    Service,
    ToolsetSpec,
    credential_config,
    hookimpl,
)

__version__ = "0.1.0"

#: The HolmesGPT toolset written for each RabbitMQ.
TOOLSET_KIND = "rabbitmq/core"

# The Bitnami chart's name label, and its helm.sh/chart label when
# nameOverride replaced the name ("rabbitmq-16.0.14"; the digit keeps out the
# rabbitmq-cluster-operator chart).
_CHART_NAME = "rabbitmq"
_CHART_PREFIXES = tuple(f"rabbitmq-{digit}" for digit in "0123456789")
# internal/metadata/label.go: every Service of a RabbitmqCluster carries
# app.kubernetes.io/component and app.kubernetes.io/part-of "rabbitmq" (and
# app.kubernetes.io/name: <cluster name>, which tells nothing).
_OPERATOR_COMPONENT = "rabbitmq"
_OPERATOR_PART_OF = "rabbitmq"
# Names of the headless twins: the operator's "<name>-nodes" (epmd and
# cluster links), the chart's "<fullname>-headless".
_HEADLESS_SUFFIXES = ("-nodes", "-headless")
# The management API's port: "management" (operator, plain), "http-stats"
# (Bitnami's service.portNames.manager), "management-tls" (operator with TLS;
# appProtocol https). Numbers: 15672 plain, 15671 TLS. The plain port first:
# with TLS on, the operator keeps it unless non-TLS listeners are disabled.
_PORT_NAMES = ("management", "http-stats", "management-tls")
_PORT_NUMBERS = (15672, 15671)


def _operator_service(labels: Mapping[str, str]) -> bool:
    return (
        labels.get("app.kubernetes.io/component") == _OPERATOR_COMPONENT
        and labels.get("app.kubernetes.io/part-of") == _OPERATOR_PART_OF
    )


def _chart_service(labels: Mapping[str, str]) -> bool:
    return labels.get("app.kubernetes.io/name") == _CHART_NAME or labels.get(
        "helm.sh/chart", ""
    ).startswith(_CHART_PREFIXES)


@attrs.frozen
class RabbitMQSettings(CredentialSettings):
    """Options of the ``rabbitmq`` detector: the management API's login and TLS.

    ``username`` (or ``username_env``) with ``password_env``, and
    ``verify_ssl``: the keys of HolmesGPT's ``RabbitMQClusterConfig``. No
    default user: the operator generates one per cluster (secret
    ``<name>-default-user``) and Bitnami's is a chart value.
    """

    auth_keys = AUTH_KEYS[TOOLSET_KIND]


class RabbitMQDetector(Detector[RabbitMQSettings]):
    """Finds each RabbitMQ's management API; writes a ``rabbitmq/core`` cluster."""

    name = "rabbitmq"
    version = __version__
    description = "RabbitMQ (management API)"
    # After the built-ins (1-5) and the other plugins of this repository.
    default_priority = 24
    # The management UI's index page: served without a login, unlike
    # /api/health/checks/*, which answers 401 to an anonymous health check.
    health_path = "/"
    Settings = RabbitMQSettings
    # The ways into detect(), as data: it is called only for Services meeting
    # one of these (it matches nothing without one).
    prefilter = Prefilter(
        label_values={
            # The operator's Services need both its labels: one suffices
            # here, the rarer one (many charts have a "rabbitmq" component,
            # few are part of a "rabbitmq").
            "app.kubernetes.io/part-of": (_OPERATOR_PART_OF,),
            # Bitnami's name label...
            "app.kubernetes.io/name": (_CHART_NAME,),
        },
        # ...or its chart label, for a release installed with nameOverride.
        label_prefixes={"helm.sh/chart": _CHART_PREFIXES},
    )

    def detect(self, service: Service, ctx: DetectContext[RabbitMQSettings]) -> Discovered | None:
        """Return the management API endpoint if ``service`` is RabbitMQ's client Service."""
        labels = service.labels
        if not (_operator_service(labels) or _chart_service(labels)):
            return None
        if service.type == "ExternalName" or service.is_headless:
            return None
        if service.name.endswith(_HEADLESS_SUFFIXES):
            return None
        # No fallback to the first port: it is AMQP (5672) or epmd (4369),
        # which do not speak HTTP.
        port = service.port_named(*_PORT_NAMES) or service.port_numbered(*_PORT_NUMBERS)
        if port is None or port.protocol.upper() != "TCP":
            return None
        return self.discovered(service, port, ctx, description="RabbitMQ")

    def toolsets(self, found: Discovered, settings: RabbitMQSettings) -> Sequence[ToolsetSpec]:
        """One ``rabbitmq/core`` cluster: id ``<namespace>/<service>``, the API URL, the login."""
        cluster = {
            # The agent names a cluster by this id; Service keys are unique.
            "id": found.key,
            "api_url": found.endpoint,
            **credential_config(settings, RabbitMQSettings.auth_keys),
        }
        return (
            ToolsetSpec(
                TOOLSET_KIND,
                {"clusters": [cluster]},
                description=f"RabbitMQ {found.service.name} in namespace {found.service.namespace}",
                combine_key="clusters",
            ),
        )


#: The plugin API this module was written for (dyntoolset.plugin.PLUGIN_API_VERSION):
#: 2.1 brought CredentialSettings, 2.3 the detector prefilter; dyntoolset
#: refuses another major version.
DYNTOOLSET_PLUGIN_API = "2.3"


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`RabbitMQDetector` with dyntoolset."""
    return [RabbitMQDetector]
