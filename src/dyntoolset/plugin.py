"""The plugin author's API: everything a detector or renderer plugin needs, in one place.

A third-party distribution imports only from here (and, in its tests, from
:mod:`dyntoolset.testing`)::

    import attrs
    from dyntoolset.plugin import (
        DetectContext, Detector, Discovered, Service, ToolsetSpec, hookimpl, loki_toolset,
    )

    @attrs.frozen
    class LokiSettings:
        tenant: str = ""

    class LokiDetector(Detector[LokiSettings]):
        name = "loki"
        Settings = LokiSettings

        def detect(self, service: Service, ctx: DetectContext[LokiSettings]) -> Discovered | None:
            ...

        def toolsets(self, found: Discovered, settings: LokiSettings) -> list[ToolsetSpec]:
            return list(loki_toolset(found))

    DYNTOOLSET_PLUGIN_API = "2"  # the plugin API this module was built for

    @hookimpl
    def register_detectors():
        return [LokiDetector]

``PLUGIN_API_VERSION`` is the plugin API this dyntoolset provides; a plugin
whose ``DYNTOOLSET_PLUGIN_API`` has another major version, or a newer minor
one, is not loaded. ``docs/writing-a-detector-plugin.md`` is the tutorial. Names not listed in
``__all__`` are internal and may change without notice.
"""

from dyntoolset.credentials import (
    AUTH_KEYS,
    AuthKeys,
    CredentialSettings,
    credential_config,
    env_placeholder,
)
from dyntoolset.detector import (
    DetectContext,
    Detector,
    NoSettings,
    SettingsT,
    choose_port,
    scheme_for,
)
from dyntoolset.errors import InvalidService
from dyntoolset.hookspecs import PLUGIN_API_VERSION, hookimpl
from dyntoolset.model import Discovered, Port, Service, ToolsetSpec
from dyntoolset.prefilter import Prefilter
from dyntoolset.renderer import Renderer
from dyntoolset.tenants import tenant_problem, tenant_validator
from dyntoolset.toolsets import (
    API_HINTS,
    HTTP_KIND,
    elasticsearch_toolsets,
    grafana_toolset,
    host_pattern,
    http_toolset,
    loki_toolset,
    prometheus_toolset,
    tempo_toolset,
    toolsets_for_type,
)
from dyntoolset.version import __version__

__all__ = [
    "API_HINTS",
    "AUTH_KEYS",
    "HTTP_KIND",
    "PLUGIN_API_VERSION",
    "AuthKeys",
    "CredentialSettings",
    "DetectContext",
    "Detector",
    "Discovered",
    "InvalidService",
    "NoSettings",
    "Port",
    "Prefilter",
    "Renderer",
    "Service",
    "SettingsT",
    "ToolsetSpec",
    "__version__",
    "choose_port",
    "credential_config",
    "elasticsearch_toolsets",
    "env_placeholder",
    "grafana_toolset",
    "hookimpl",
    "host_pattern",
    "http_toolset",
    "loki_toolset",
    "prometheus_toolset",
    "scheme_for",
    "tempo_toolset",
    "tenant_problem",
    "tenant_validator",
    "toolsets_for_type",
]
