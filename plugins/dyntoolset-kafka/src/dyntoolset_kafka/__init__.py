"""dyntoolset-kafka: a detector plugin that finds Kafka's bootstrap Services.

Each Kafka cluster found becomes one entry of HolmesGPT 0.45's
``kafka/admin`` toolset (``clusters: [{name, broker, security_protocol,
sasl_mechanism, username, password, ssl_ca_cert_path}]``); several are
joined into one toolset (``combine_key="clusters"``). Kafka does not speak
HTTP, so the health check is a TCP connect (``health_check = "tcp"``) and
the endpoint reads ``kafka://<service>.<namespace>.svc.<domain>:<port>``.

It recognises Strimzi's ``<cluster>-kafka-bootstrap`` Service (on the
plain listener its ``strimzi.io/discovery`` annotation names, a TLS one when
there is no other) and the Bitnami kafka chart's client Service
(``<fullname>``, port ``tcp-client``). Strimzi's headless
``<cluster>-kafka-brokers``, its external ``<cluster>-kafka-<listener>-bootstrap``
and per-broker Services, and Bitnami's ``-headless`` and
``-controller-headless``/``-broker-headless`` and external-access Services
are never matched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from dyntoolset.plugin import (
    AuthKeys,
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
)

__version__ = "0.1.0"

#: The HolmesGPT toolset written for each Kafka cluster.
TOOLSET_KIND = "kafka/admin"

#: Where HolmesGPT 0.45's ``KafkaClusterConfig`` takes each credential: SASL
#: ``username``/``password`` and a CA bundle path; it has no verify switch.
AUTH_KEYS = AuthKeys(
    TOOLSET_KIND,
    username="username",
    password="password",
    verify_ssl=None,
    ca_file="ssl_ca_cert_path",
)

#: The values HolmesGPT (librdkafka) accepts.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# Strimzi (KafkaCluster.generateService): ports are tcp-replication 9091
# (broker to broker, mTLS only) plus one per internal listener; the
# strimzi.io/discovery annotation lists every listener's port, tls and auth.
_STRIMZI_KIND = "Kafka"
_STRIMZI_REPLICATION = "tcp-replication"
_STRIMZI_DISCOVERY = "strimzi.io/discovery"
# ListenersUtils.backwardsCompatiblePortName: listener "plain" on 9092.
_STRIMZI_PLAIN_PORT_NAME = "tcp-clients"
# Bitnami (templates/svc.yaml): "tcp-client" on service.ports.client (9092).
_CHART_NAME = "kafka"
_CHART_PREFIXES = tuple(f"kafka-{digit}" for digit in "0123456789")
_CHART_PORT_NAME = "tcp-client"
_CHART_PORT_NUMBER = 9092
# Bitnami's twins: "-headless" (ZooKeeper mode), "-controller-headless",
# "-broker-headless" (KRaft), "-<n>-external" / "-<role>-<n>-external".
_CHART_SKIP_SUFFIXES = ("-headless", "-external")
# Bitnami's other Services with the chart's labels: jmx-metrics, metrics
# (kafka-exporter), controller-eligible, broker.
_CHART_COMPONENT = "kafka"

#: Metadata key saying the chosen listener speaks TLS ("true"/"false").
TLS_METADATA = "tls"


def _check_choice(choices: tuple[str, ...]) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")

    return check


@attrs.frozen
class KafkaSettings(CredentialSettings):
    """Options of the ``kafka`` detector: SASL login, CA bundle, protocol.

    ``username``/``username_env`` with ``password_env`` log in with SASL
    (``sasl_mechanism``, default ``SCRAM-SHA-512``: Strimzi's
    ``scram-sha-512`` listeners; Bitnami accepts it too). ``ca_file`` is a
    CA bundle path in HolmesGPT's container. ``security_protocol`` replaces
    the one derived from the listener (TLS or not) and the login.
    """

    auth_keys = AUTH_KEYS

    sasl_mechanism: str = attrs.field(
        default="SCRAM-SHA-512", validator=_check_choice(SASL_MECHANISMS)
    )
    security_protocol: str | None = attrs.field(
        default=None, validator=_check_choice(SECURITY_PROTOCOLS)
    )


def _strimzi_listeners(service: Service) -> dict[int, tuple[bool, str]]:
    """Port -> (tls, auth) from the discovery annotation; empty if absent or unreadable."""
    raw = service.annotations.get(_STRIMZI_DISCOVERY, "")
    try:
        entries = json.loads(raw) if raw else []
    except ValueError:
        return {}
    listeners: dict[int, tuple[bool, str]] = {}
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, Mapping) and isinstance(entry.get("port"), int):
                listeners[entry["port"]] = (entry.get("tls") is True, str(entry.get("auth", "")))
    return listeners


def _strimzi_port(service: Service) -> tuple[Port, bool] | None:
    """The listener to use: plain before TLS, no authentication before some."""
    ports = [
        p for p in service.ports if p.name != _STRIMZI_REPLICATION and p.protocol.upper() == "TCP"
    ]
    listeners = _strimzi_listeners(service)
    if not listeners:
        # Without the annotation only the backwards-compatible plain name is known.
        plain = next((p for p in ports if p.name == _STRIMZI_PLAIN_PORT_NAME), None)
        return (plain, False) if plain else None
    known = [(p, listeners[p.port]) for p in ports if p.port in listeners]
    if not known:
        return None
    port, (tls, _) = min(known, key=lambda item: (item[1][0], item[1][1] != "none"))
    return port, tls


def _is_strimzi_bootstrap(service: Service, labels: Mapping[str, str]) -> bool:
    cluster = labels.get("strimzi.io/cluster", "")
    return (
        labels.get("strimzi.io/kind") == _STRIMZI_KIND
        and bool(cluster)
        # KafkaResources.bootstrapServiceName: never "-<listener>-bootstrap".
        and service.name == f"{cluster}-kafka-bootstrap"
    )


def _is_chart_service(service: Service, labels: Mapping[str, str]) -> bool:
    if "strimzi.io/kind" in labels:
        return False  # Strimzi also sets app.kubernetes.io/name: kafka
    if not (
        labels.get("app.kubernetes.io/name") == _CHART_NAME
        or labels.get("helm.sh/chart", "").startswith(_CHART_PREFIXES)
    ):
        return False
    component = labels.get("app.kubernetes.io/component")
    return component in (None, _CHART_COMPONENT) and not service.name.endswith(_CHART_SKIP_SUFFIXES)


class KafkaDetector(Detector[KafkaSettings]):
    """Finds each Kafka cluster's bootstrap Service; writes a ``kafka/admin`` cluster."""

    name = "kafka"
    version = __version__
    description = "Apache Kafka (bootstrap servers)"
    # After the built-ins (1-5) and the other plugins of this repository.
    default_priority = 25
    # Kafka's protocol is not HTTP: connect to the bootstrap port, send nothing.
    health_check = "tcp"
    Settings = KafkaSettings
    # The ways into detect(), as data: it is called only for Services meeting
    # one of these (it matches nothing without one).
    prefilter = Prefilter(
        label_values={
            # Strimzi's bootstrap Service (the name rule is left to detect()).
            "strimzi.io/kind": (_STRIMZI_KIND,),
            # Bitnami's name label...
            "app.kubernetes.io/name": (_CHART_NAME,),
        },
        # ...or its chart label, for a release installed with nameOverride.
        label_prefixes={"helm.sh/chart": _CHART_PREFIXES},
    )

    def detect(self, service: Service, ctx: DetectContext[KafkaSettings]) -> Discovered | None:
        """Return the bootstrap address if ``service`` is a Kafka cluster's client Service."""
        labels = service.labels
        if service.type == "ExternalName" or service.is_headless:
            return None
        if _is_strimzi_bootstrap(service, labels):
            chosen = _strimzi_port(service)
        elif _is_chart_service(service, labels):
            port = service.port_named(_CHART_PORT_NAME) or service.port_numbered(_CHART_PORT_NUMBER)
            # Bitnami's listener protocol is a chart value the Service does not show.
            chosen = (port, False) if port and port.protocol.upper() == "TCP" else None
        else:
            return None
        if chosen is None:
            return None
        port, tls = chosen
        return self.discovered(
            service,
            port,
            ctx,
            endpoint=ctx.endpoint(service, port, scheme="kafka"),
            description="Apache Kafka",
            metadata={TLS_METADATA: "true" if tls else "false"},
        )

    def toolsets(self, found: Discovered, settings: KafkaSettings) -> Sequence[ToolsetSpec]:
        """One ``kafka/admin`` cluster: name ``<namespace>/<service>``, the broker, the login."""
        login = credential_config(settings, AUTH_KEYS)
        tls = found.metadata.get(TLS_METADATA) == "true"
        protocol = settings.security_protocol
        if protocol is None:
            sasl = "password" in login
            protocol = ("SASL_" if sasl else "") + ("SSL" if tls else "PLAINTEXT")
        cluster: dict[str, Any] = {
            # The agent names a cluster by this; Service keys are unique.
            "name": found.key,
            "broker": found.endpoint.split("://", 1)[1],
            "security_protocol": protocol,
        }
        if protocol.startswith("SASL_"):
            cluster["sasl_mechanism"] = settings.sasl_mechanism
        cluster.update(login)
        return (
            ToolsetSpec(
                TOOLSET_KIND,
                {"clusters": [cluster]},
                description=f"Apache Kafka {found.service.name} in namespace "
                f"{found.service.namespace}",
                combine_key="clusters",
            ),
        )


#: The plugin API this module was written for (dyntoolset.plugin.PLUGIN_API_VERSION):
#: 2.1 brought CredentialSettings and health check kinds, 2.3 the detector
#: prefilter; another major is refused.
DYNTOOLSET_PLUGIN_API = "2.3"


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`KafkaDetector` with dyntoolset."""
    return [KafkaDetector]
