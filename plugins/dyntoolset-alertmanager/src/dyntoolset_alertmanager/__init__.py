"""dyntoolset-alertmanager: a detector plugin that finds Prometheus Alertmanager.

HolmesGPT 0.45 has no Alertmanager toolset, so each Alertmanager found
becomes a generic read-only HTTP toolset limited to Alertmanager's API v2
(``/api/v2/*``): active alerts, alert groups, silences, receivers, status.

It recognises the Services of kube-prometheus-stack, the
prometheus-community alertmanager chart (also a subchart of the prometheus
chart), the ``alertmanager-<name>`` Service kube-prometheus (and OpenShift)
put in front of a Prometheus Operator ``Alertmanager``, and the Service the
VictoriaMetrics operator builds for a ``VMAlertmanager``. The Prometheus
Operator's ``alertmanager-operated`` governing Service, the charts'
``-headless`` Services and per-replica Services are never matched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from dyntoolset.plugin import (
    DetectContext,
    Detector,
    Discovered,
    NoSettings,
    Prefilter,
    Service,
    ToolsetSpec,
    hookimpl,
    http_toolset,
)

__version__ = "0.1.0"

# app.kubernetes.io/name: the alertmanager chart and kube-prometheus/OpenShift
# ("alertmanager"), the VictoriaMetrics operator ("vmalertmanager").
_NAME = "alertmanager"
_VM_NAME = "vmalertmanager"
# With nameOverride the alertmanager chart's name label holds the override;
# helm.sh/chart still reads "alertmanager-<version>".
_CHART_PREFIXES = tuple(f"alertmanager-{digit}" for digit in "0123456789")
# kube-prometheus-stack's "app" label: "<part-of>-alertmanager".
_KPS_APP_SUFFIX = "-alertmanager"
# servicePerReplica (both charts) adds "<fullname>-<n>" per pod: the same
# Alertmanager again, pinned to one replica.
_PER_REPLICA_RE = re.compile(r".*-\d+")
# The port Alertmanager's API answers on: "http-web" (kube-prometheus-stack's
# alertmanagerSpec.portName), "web" (Prometheus Operator's and VM operator's
# default, kube-prometheus), "http" (alertmanager chart); 9093 everywhere.
_PORT_NAMES = ("http-web", "web", "http")
_PORT_NUMBERS = (9093,)

#: What the agent may call: Alertmanager's API v2, read-only.
API_PATHS = ("/api/v2/*",)
API_HINT = (
    "This is the Alertmanager API v2 (JSON). Useful GET requests:\n"
    "- /api/v2/alerts?active=true&silenced=false&inhibited=false: the alerts firing now; "
    'add filter=<label matcher> (URL-encoded, e.g. filter=namespace="shop") to narrow them.\n'
    "- /api/v2/alerts/groups: the same alerts grouped as they are notified, with their receiver.\n"
    "- /api/v2/silences: silences (state active, pending or expired) and who created them.\n"
    "- /api/v2/receivers: the configured receivers.\n"
    "- /api/v2/status: version, cluster peers and the running configuration.\n"
    "Check whether an alert is silenced or inhibited before concluding that nothing fires."
)


def _kube_prometheus_stack(service: Service, labels: Mapping[str, str]) -> bool:
    # kube-prometheus-stack labels its Service "app: <name>-alertmanager" and
    # "app.kubernetes.io/part-of: <name>" (<name> = nameOverride or the chart
    # name), and names it "<fullname>-alertmanager"; per-replica Services
    # append "-<n>" to that name.
    part_of = labels.get("app.kubernetes.io/part-of")
    return (
        part_of is not None
        and labels.get("app") == part_of + _KPS_APP_SUFFIX
        and service.name.endswith(_KPS_APP_SUFFIX)
    )


class AlertmanagerDetector(Detector[NoSettings]):
    """Finds each Alertmanager's API; writes an HTTP toolset limited to ``/api/v2/*``."""

    name = "alertmanager"
    version = __version__
    description = "Prometheus Alertmanager (alerts, silences)"
    # After the built-ins (1-5): a Service they claim is theirs.
    default_priority = 22
    health_path = "/-/healthy"
    # The four ways into detect(), as data: it is called only for Services
    # meeting one of them (it matches nothing without one).
    prefilter = Prefilter(
        # The charts, kube-prometheus and the VM operator name the Service.
        label_values={"app.kubernetes.io/name": (_NAME, _VM_NAME)},
        # The alertmanager chart installed with nameOverride.
        label_prefixes={"helm.sh/chart": _CHART_PREFIXES},
        # kube-prometheus-stack: app is "<part-of>-alertmanager", whatever
        # nameOverride made of <part-of>.
        label_suffixes={"app": (_KPS_APP_SUFFIX,)},
    )

    def detect(self, service: Service, ctx: DetectContext[NoSettings]) -> Discovered | None:
        """Return the Alertmanager API endpoint if ``service`` is one; ``None`` otherwise."""
        labels = service.labels
        name = labels.get("app.kubernetes.io/name")
        vm = name == _VM_NAME
        if not (
            vm
            or name == _NAME
            or labels.get("helm.sh/chart", "").startswith(_CHART_PREFIXES)
            or _kube_prometheus_stack(service, labels)
        ):
            return None
        if service.type == "ExternalName" or "operated-alertmanager" in labels:
            return None
        # The VM operator's Service is headless and the only one it builds
        # (besides an optional additional one); everywhere else a headless
        # Service is the governing twin of a ClusterIP one.
        if service.is_headless and not vm:
            return None
        if service.name.endswith("-headless") or service.name == "alertmanager-operated":
            return None
        if _PER_REPLICA_RE.fullmatch(service.name):
            return None
        # No fallback to the first port: it may be the gossip mesh (9094) or
        # a config reloader.
        port = service.port_named(*_PORT_NAMES) or service.port_numbered(*_PORT_NUMBERS)
        if port is None or port.protocol.upper() != "TCP":
            return None
        # The toolset's description is "<this> <service> in namespace <ns>".
        return self.discovered(service, port, ctx, description="Prometheus Alertmanager")

    def toolsets(self, found: Discovered, settings: NoSettings) -> Sequence[ToolsetSpec]:
        """A read-only HTTP toolset on the Service's host, limited to Alertmanager's API v2."""
        return (http_toolset(found, paths=API_PATHS, hint=API_HINT),)


#: The plugin API this module was written for (dyntoolset.plugin.PLUGIN_API_VERSION):
#: 2.3 brought the detector prefilter; dyntoolset refuses another major version.
DYNTOOLSET_PLUGIN_API = "2.3"


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`AlertmanagerDetector` with dyntoolset."""
    return [AlertmanagerDetector]
