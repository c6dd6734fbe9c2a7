"""dyntoolset-victorialogs: a detector plugin that finds VictoriaLogs' query endpoint.

Each VictoriaLogs found becomes HolmesGPT 0.45's ``victorialogs`` toolset
(``VictoriaLogsConfig``: ``api_url``, ``username``/``password`` or
``bearer_token``, ``verify_ssl``), which queries ``/select/logsql/*`` and
checks ``/health``.

It recognises the Services of the victoria-logs-single chart (the
``server``), the victoria-logs-cluster chart's ``vlselect`` and the
VictoriaMetrics operator's ``VLSingle``, ``VLogs`` (deprecated) and
``VLCluster`` (``vlselect-<name>``). ``vlinsert`` (ingestion only),
``vlstorage``, the cluster chart's ``vmauth``, every headless Service and
ExternalName Services are never matched.
"""

from __future__ import annotations

import re
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

#: HolmesGPT 0.45's toolset for VictoriaLogs (one server: no instances list).
TOOLSET = "victorialogs"

# VictoriaMetrics/helm-charts: app.kubernetes.io/name is the chart's name
# (nameOverride replaces it; helm.sh/chart still names the chart) and "app"
# the component (victoria-metrics-common's vm.selectorLabels).
_CHARTS = {
    "victoria-logs-single": "server",
    "victoria-logs-cluster": "vlselect",
}
# The chart label: "<chart>-<version>", the version starting with a digit.
_CHART_RE = re.compile(rf"({'|'.join(map(re.escape, _CHARTS))})-[0-9]")
_CHART_PREFIXES = tuple(f"{chart}-{digit}" for chart in _CHARTS for digit in "0123456789")
# VictoriaMetrics operator: app.kubernetes.io/name of the Services it builds
# for a VLSingle, a VLogs (v1beta1, deprecated) and a VLCluster's select tier.
_OPERATOR_NAMES = frozenset({"vlsingle", "vlogs", "vlselect"})
# "http" everywhere; 9428 (single node), 9471 (vlselect) by default. Never
# the first port: it may be a syslog listener.
_PORT_NAMES = ("http",)
_PORT_NUMBERS = (9428, 9471)


@attrs.frozen
class VictoriaLogsSettings(CredentialSettings):
    """Options of the ``victorialogs`` detector (``detectors.victorialogs.config``).

    The credential fields of :class:`~dyntoolset.plugin.CredentialSettings`
    that HolmesGPT's ``VictoriaLogsConfig`` takes: ``username`` (or
    ``username_env``) with ``password_env`` for basic auth, or ``token_env``
    for a bearer token (as vmauth in front of VictoriaLogs asks), and
    ``verify_ssl``.
    """

    auth_keys = AUTH_KEYS[TOOLSET]


def _component(labels: Mapping[str, str]) -> str | None:
    """The component a VictoriaLogs Service serves, or ``None`` for any other Service."""
    name = labels.get("app.kubernetes.io/name", "")
    if name in _OPERATOR_NAMES:
        return name
    chart = _CHART_RE.match(labels.get("helm.sh/chart", ""))
    chart_name = chart.group(1) if chart else name
    if chart_name not in _CHARTS:
        return None
    return "query" if labels.get("app") == _CHARTS[chart_name] else "other"


class VictoriaLogsDetector(Detector[VictoriaLogsSettings]):
    """Finds each VictoriaLogs query endpoint; writes HolmesGPT's ``victorialogs`` toolset."""

    name = "victorialogs"
    version = __version__
    description = "VictoriaLogs (LogsQL query endpoint)"
    # After the built-ins (1-5): a Service they claim is theirs.
    default_priority = 27
    health_path = "/health"
    Settings = VictoriaLogsSettings
    # What _component() asks for, as data: detect() is called only for
    # Services meeting one of these (it matches nothing without one).
    prefilter = Prefilter(
        # The operator's Services, or a chart's name label.
        label_values={"app.kubernetes.io/name": _OPERATOR_NAMES | _CHARTS.keys()},
        # A chart's label, for a release installed with nameOverride.
        label_prefixes={"helm.sh/chart": _CHART_PREFIXES},
    )

    def detect(
        self, service: Service, ctx: DetectContext[VictoriaLogsSettings]
    ) -> Discovered | None:
        """Return the query endpoint if ``service`` is VictoriaLogs' single node or vlselect."""
        if service.type == "ExternalName" or service.is_headless:
            return None
        component = _component(service.labels)
        if component is None or component == "other":
            return None
        port = service.port_named(*_PORT_NAMES) or service.port_numbered(*_PORT_NUMBERS)
        if port is None or port.protocol.upper() != "TCP":
            return None
        return self.discovered(service, port, ctx)

    def toolsets(self, found: Discovered, settings: VictoriaLogsSettings) -> Sequence[ToolsetSpec]:
        """HolmesGPT's ``victorialogs`` toolset on the endpoint, with the configured login."""
        where = f"VictoriaLogs {found.service.name} in namespace {found.service.namespace}"
        return (
            ToolsetSpec(
                kind=TOOLSET,
                config={
                    "api_url": found.endpoint,
                    **credential_config(settings, VictoriaLogsSettings.auth_keys),
                },
                description=f"Logs in {where}",
                llm_instructions=(
                    f"{where} ({found.endpoint}) answers LogsQL queries: search "
                    "logs, list streams, field names and values, hit counts. Read-only."
                ),
            ),
        )


#: The plugin API this module was written for (dyntoolset.plugin.PLUGIN_API_VERSION):
#: 2.1 added CredentialSettings, 2.3 the detector prefilter; dyntoolset refuses
#: to load it when its own major version differs or its minor version is older.
DYNTOOLSET_PLUGIN_API = "2.3"


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`VictoriaLogsDetector` with dyntoolset."""
    return [VictoriaLogsDetector]
