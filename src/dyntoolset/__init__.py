"""dyntoolset: discovers observability backends in Kubernetes and keeps agent toolsets current.

This module is the **embedder's API**: run discovery cycles from your own
program or controller. (Plugin authors import from :mod:`dyntoolset.plugin`;
the testing kit is :mod:`dyntoolset.testing`; the live controller's pieces
are :mod:`dyntoolset.controller` and :mod:`dyntoolset.kube`.)::

    from dyntoolset import Engine, service_from_object

    engine = Engine.load("detector-config.yaml")   # plugins + validated configuration
    cycle = engine.cycle(
        [service_from_object(obj) for obj in service_objects], existing=current_configmap
    )
    if cycle.merge.changed:
        ...  # write cycle.merge.configmap

The counterparts of the requirements' ``CreateDetectors`` and
``RegisterCustomDetector`` are :func:`create_detectors` and
:meth:`PluginSet.add_detector`. Why a given Service is or is not in the
toolsets: :func:`explain` (each enabled detector's :class:`Verdict` on it, in
priority order; also :meth:`Engine.explain`). Names not in ``__all__`` are
internal.
"""

from dyntoolset.config import Config, load_config, load_config_text
from dyntoolset.configmap import MergeResult
from dyntoolset.discovery import VERDICTS, DiscoveryResult, Skip, Verdict, create_detectors, explain
from dyntoolset.errors import (
    ConfigError,
    DocumentTooLargeError,
    DuplicateNameError,
    DyntoolsetError,
    InvalidConfigMapError,
    ManifestError,
    PluginLoadError,
    RenderError,
    UnknownFormatError,
)
from dyntoolset.manifests import ManifestObject, ManifestReport, read_manifests
from dyntoolset.model import Discovered, HealthStatus, Port, Service, ToolsetSpec
from dyntoolset.pipeline import Cycle, Engine, HealthCheck, select_healthy
from dyntoolset.plugins import PluginSet, find_plugins, load_plugins
from dyntoolset.snapshot import SnapshotError, service_from_object
from dyntoolset.version import __version__

__all__ = [
    "VERDICTS",
    "Config",
    "ConfigError",
    "Cycle",
    "Discovered",
    "DiscoveryResult",
    "DocumentTooLargeError",
    "DuplicateNameError",
    "DyntoolsetError",
    "Engine",
    "HealthCheck",
    "HealthStatus",
    "InvalidConfigMapError",
    "ManifestError",
    "ManifestObject",
    "ManifestReport",
    "MergeResult",
    "PluginLoadError",
    "PluginSet",
    "Port",
    "RenderError",
    "Service",
    "Skip",
    "SnapshotError",
    "ToolsetSpec",
    "UnknownFormatError",
    "Verdict",
    "__version__",
    "create_detectors",
    "explain",
    "find_plugins",
    "load_config",
    "load_config_text",
    "load_plugins",
    "read_manifests",
    "select_healthy",
    "service_from_object",
]
