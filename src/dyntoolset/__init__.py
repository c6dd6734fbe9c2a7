"""dyntoolset: discovers observability backends in Kubernetes and keeps agent toolsets current.

The public API for the pure path (no cluster needed)::

    from dyntoolset import Engine, service_from_object

    engine = Engine.load("detector-config.yaml")   # plugins + validated configuration
    cycle = engine.cycle(
        [service_from_object(obj) for obj in service_objects], existing=current_configmap
    )
    if cycle.merge.changed:
        ...  # write cycle.merge.configmap

The pieces :class:`Engine` composes are public too: :func:`load_plugins`,
:func:`load_config`, :func:`create_detectors`, :func:`discover`,
:func:`merge_configmap`. Plugin authors subclass :class:`Detector` or
:class:`Renderer` and implement the hooks with :data:`hookimpl`.
"""

from dyntoolset.config import Config, DetectorConfig, load_config
from dyntoolset.configmap import MergeResult, merge_configmap
from dyntoolset.detector import DetectContext, Detector, choose_port, scheme_for
from dyntoolset.discovery import ActiveDetector, DiscoveryResult, create_detectors, discover
from dyntoolset.errors import (
    ConfigError,
    DocumentTooLargeError,
    DuplicateNameError,
    DyntoolsetError,
    InvalidConfigMapError,
    InvalidService,
    ManifestError,
    PluginLoadError,
    RenderError,
)
from dyntoolset.hookspecs import hookimpl
from dyntoolset.manifests import read_manifests
from dyntoolset.model import Discovered, HealthStatus, Port, Service, ToolsetSpec
from dyntoolset.pipeline import Engine, load_configuration
from dyntoolset.plugins import PluginSet, load_plugins
from dyntoolset.renderer import Renderer
from dyntoolset.snapshot import service_from_object
from dyntoolset.version import __version__

__all__ = [
    "ActiveDetector",
    "Config",
    "ConfigError",
    "DetectContext",
    "Detector",
    "DetectorConfig",
    "Discovered",
    "DiscoveryResult",
    "DocumentTooLargeError",
    "DuplicateNameError",
    "DyntoolsetError",
    "Engine",
    "HealthStatus",
    "InvalidConfigMapError",
    "InvalidService",
    "ManifestError",
    "MergeResult",
    "PluginLoadError",
    "PluginSet",
    "Port",
    "RenderError",
    "Renderer",
    "Service",
    "ToolsetSpec",
    "__version__",
    "choose_port",
    "create_detectors",
    "discover",
    "hookimpl",
    "load_config",
    "load_configuration",
    "load_plugins",
    "merge_configmap",
    "read_manifests",
    "scheme_for",
    "service_from_object",
]
