"""dyntoolset: discovers observability backends in Kubernetes and keeps agent toolsets up to date."""

from dyntoolset.detector import DetectContext, Detector, choose_port, scheme_for
from dyntoolset.errors import (
    ConfigError,
    DocumentTooLargeError,
    DuplicateNameError,
    DyntoolsetError,
    InvalidService,
    ManifestError,
    PluginLoadError,
)
from dyntoolset.hookspecs import hookimpl
from dyntoolset.model import Discovered, HealthStatus, Port, Service, ToolsetSpec
from dyntoolset.renderer import Renderer

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DetectContext",
    "Detector",
    "Discovered",
    "DocumentTooLargeError",
    "DuplicateNameError",
    "DyntoolsetError",
    "HealthStatus",
    "InvalidService",
    "ManifestError",
    "PluginLoadError",
    "Port",
    "Renderer",
    "Service",
    "ToolsetSpec",
    "__version__",
    "choose_port",
    "hookimpl",
    "scheme_for",
]
