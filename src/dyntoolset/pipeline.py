"""The pure path in one object: plugins, configuration, detectors and renderers.

:class:`Engine` is what embedding programs use::

    from dyntoolset import Engine, service_from_object

    engine = Engine.load("detector-config.yaml")
    result = engine.discover(service_from_object(o) for o in services_json)
    documents = engine.render(result.discovered)          # {data key: text}
    merge = engine.configmap(result.discovered, existing=current_configmap)
    if merge.changed:
        ...  # write merge.configmap

It does no I/O besides reading the configuration file and importing plugins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from dyntoolset.config import Config, parse_config, read_config_text, resolve_config
from dyntoolset.configmap import OVERRIDES_KEY, MergeResult, merge_configmap, read_overrides
from dyntoolset.discovery import ActiveDetector, DiscoveryResult, create_detectors, discover
from dyntoolset.errors import ConfigError, RenderError
from dyntoolset.model import Discovered, Service
from dyntoolset.plugins import PluginSet, load_path_plugin, load_plugins
from dyntoolset.renderer import Renderer

log = logging.getLogger(__name__)


def load_configuration(path: str | Path | None, plugins: PluginSet) -> Config:
    """Read, validate and resolve the configuration; load ``plugin.path`` detectors.

    Detectors configured with ``plugin.path`` that are not installed are
    loaded between the schema check and resolution; a load failure is logged
    and that detector does not run (the others do). Raises
    :class:`ConfigError` listing every problem.
    """
    text, source = read_config_text(path)
    raw, problems = parse_config(text)
    if raw is None:
        raise ConfigError(problems, source)
    for name, block in sorted((raw.detectors or {}).items()):
        path = block.plugin.path if block.plugin else None
        if path and name not in plugins.detectors and not load_path_plugin(plugins, name, path):
            log.warning("detector %s (plugin.path %s) failed to load; it will not run", name, path)
    config, more = resolve_config(raw, plugins, source)
    if config is None or problems:
        raise ConfigError(problems + more, source)
    return config


class Engine:
    """A configured set of detectors and renderers; see the module docstring."""

    def __init__(self, config: Config, plugins: PluginSet) -> None:
        self.config = config
        self.plugins = plugins
        self.detectors: list[ActiveDetector] = create_detectors(config, plugins)
        self.renderers: dict[str, Renderer] = {
            name: info.cls() for name, info in sorted(plugins.renderers.items())
        }
        disabled = sorted(n for n, d in config.detectors.items() if not d.enabled)
        log.info(
            "detectors enabled, in order: %s; disabled: %s (configuration: %s)",
            ", ".join(f"{a.name} (priority {a.config.priority})" for a in self.detectors) or "none",
            ", ".join(disabled) or "none",
            config.source,
        )

    @classmethod
    def load(
        cls, config_path: str | Path | None = None, plugins: PluginSet | None = None
    ) -> Engine:
        """Load plugins (unless given) and the configuration at ``config_path``."""
        plugins = plugins if plugins is not None else load_plugins()
        return cls(load_configuration(config_path, plugins), plugins)

    def discover(self, services: Iterable[Service]) -> DiscoveryResult:
        """Run the enabled detectors over ``services``."""
        return discover(services, self.detectors)

    def render(
        self, discovered: Sequence[Discovered], formats: Sequence[str] | None = None
    ) -> dict[str, str]:
        """``{data key: document}`` for each output format (default: the configured ones).

        Raises :class:`RenderError` naming the renderer when one raises or
        returns something that is not a string: all documents or none.
        """
        chosen = (self.config.output.formats or ()) if formats is None else formats
        documents = {}
        for name in chosen:
            renderer = self.renderers.get(name)
            if renderer is None:
                raise KeyError(
                    f"unknown output format {name!r}; installed: {', '.join(self.renderers)}"
                )
            try:
                document = renderer.render(discovered)
            except Exception as exc:
                raise self._render_error(name, f"render() raised {exc!r}") from exc
            if not isinstance(document, str):
                raise self._render_error(
                    name, f"render() returned {type(document).__name__}, not str"
                )
            documents[renderer.data_key] = document
        return documents

    def _render_error(self, name: str, reason: str) -> RenderError:
        log.error("renderer %s failed: %s", name, reason)
        return RenderError(name, self.plugins.renderers[name].origin, reason)

    def documents(
        self,
        discovered: Sequence[Discovered],
        existing: Mapping[str, Any] | None = None,
        formats: Sequence[str] | None = None,
    ) -> tuple[dict[str, str], list[str]]:
        """``({data key: document}, problems)``: the documents as they are written.

        Like :meth:`render`, with the operator's ``overrides.yaml`` of
        ``existing`` applied by the renderers that support it. Overrides that
        cannot be applied are left out and described in ``problems``.
        """
        chosen = list(self.config.output.formats or ()) if formats is None else list(formats)
        documents = self.render(discovered, chosen)
        overrides, problem = read_overrides(existing)
        problems = [problem] if problem else []
        if overrides is None:
            return documents, problems
        for name in chosen:
            renderer = self.renderers[name]
            try:
                document = renderer.apply_overrides(documents[renderer.data_key], overrides)
            except ValueError as exc:
                problems.append(f"{OVERRIDES_KEY}: {exc} (not applied to {renderer.data_key})")
                continue
            except Exception as exc:  # a bug in the renderer, not in the overrides
                raise self._render_error(name, f"apply_overrides() raised {exc!r}") from exc
            if not isinstance(document, str):
                raise self._render_error(
                    name, f"apply_overrides() returned {type(document).__name__}, not str"
                )
            documents[renderer.data_key] = document
        return documents, problems

    def configmap(
        self,
        discovered: Sequence[Discovered],
        existing: Mapping[str, Any] | None = None,
        now: str | None = None,
    ) -> MergeResult:
        """The output ConfigMap for ``discovered``, merged into ``existing``.

        The operator's ``overrides.yaml`` in ``existing`` is never changed; it
        is applied to the documents of renderers that support it (HolmesGPT
        reads a single file, so hand-written toolsets must be merged into
        ours to reach it). Overrides that cannot be applied are left out and
        reported in :attr:`MergeResult.problems`; the rest is still written.
        A renderer that fails raises :class:`RenderError` (nothing partial).
        """
        stamp = now or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        documents, problems = self.documents(discovered, existing)
        for text in problems:
            log.warning("%s", text)
        merge = merge_configmap(documents, self.config.output, existing, stamp)
        return attrs.evolve(merge, problems=(*problems, *merge.problems))
