"""The pluggy hook specifications of dyntoolset (project name ``dyntoolset``).

A plugin is a module (named by an entry point in the ``dyntoolset`` group, or
registered in code) that implements one or more of these hooks with
:data:`hookimpl`. Hooks take no arguments and return *classes*: dyntoolset
instantiates them, validates them and reports name clashes, so a plugin never
has to know about other plugins.

Example::

    from dyntoolset import Detector, hookimpl

    class LokiDetector(Detector):
        name = "loki"
        ...

    @hookimpl
    def register_detectors():
        return [LokiDetector]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from dyntoolset.detector import Detector
    from dyntoolset.renderer import Renderer

PROJECT = "dyntoolset"

#: The plugin API version this dyntoolset provides, ``MAJOR.MINOR``. A plugin
#: module declares the version it was built for as ``DYNTOOLSET_PLUGIN_API``
#: next to its hook implementations; it loads when the major versions are
#: equal and its minor version is at most ours (a minor version only adds
#: names; a major version removes or changes them). See docs/architecture.md.
PLUGIN_API_VERSION = "2.3"
#: The module attribute a plugin declares its plugin API version in.
PLUGIN_API_ATTRIBUTE = "DYNTOOLSET_PLUGIN_API"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- Discovery -------------------------------------------------------------


@hookspec
def register_detectors() -> list[type[Detector[Any]]]:  # type: ignore[empty-body]
    """Return the :class:`~dyntoolset.detector.Detector` subclasses this plugin provides.

    Each class must have a unique ``name`` (lowercase letters, digits and
    dashes). The detector runs once enabled in the configuration, which is
    the default for every installed detector.
    """


# -- Output ----------------------------------------------------------------


@hookspec
def register_renderers() -> list[type[Renderer]]:  # type: ignore[empty-body]
    """Return the :class:`~dyntoolset.renderer.Renderer` subclasses this plugin provides.

    A renderer turns the discovered services into one data key of the output
    ConfigMap (for example ``custom_toolset.yaml`` for HolmesGPT).
    """
