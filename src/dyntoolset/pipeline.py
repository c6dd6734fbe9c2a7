"""One discovery cycle in one object: plugins, configuration, detectors and renderers.

:class:`Engine` owns the whole cycle, in this order: discover (detectors by
priority, first match wins) → health (an optional checker) → select (healthy
services, or all with ``include_unhealthy``) → render (every configured
format) → apply the operator's ``overrides.yaml`` → merge into the existing
ConfigMap (foreign keys kept, drift restored, no change when nothing
changed). Callers (the ``discover`` command, the controller, embedders) run
:meth:`Engine.cycle` and report its :class:`Cycle`; they never re-order steps::

    from dyntoolset import Engine, service_from_object

    engine = Engine.load("detector-config.yaml")
    cycle = engine.cycle(service_from_object(o) for o in services_json,
                         existing=current_configmap)
    if cycle.merge.changed:
        ...  # write cycle.merge.configmap

It does no I/O besides reading the configuration file and importing plugins;
health checks happen inside the checker the caller passes in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import attrs

from dyntoolset.config import Config, load_config, load_config_text
from dyntoolset.configmap import MergeResult, merge_configmap, read_overrides
from dyntoolset.discovery import (
    ActiveDetector,
    DiscoveryMemo,
    DiscoveryResult,
    Verdict,
    create_detectors,
    discover,
    explain,
)
from dyntoolset.errors import RenderError, UnknownFormatError
from dyntoolset.model import OVERRIDES_KEY, Discovered, Service
from dyntoolset.plugins import PluginSet, load_plugins
from dyntoolset.renderer import Renderer

log = logging.getLogger(__name__)


class HealthCheck(Protocol):
    """What :meth:`Engine.cycle` needs of a health checker
    (:class:`dyntoolset.health.HealthChecker` is one)."""

    def check(self, discovered: Sequence[Discovered]) -> list[Discovered]:
        """``discovered`` in the same order, each with ``health`` set (or left ``None``)."""
        ...


def select_healthy(
    discovered: Sequence[Discovered], include_unhealthy: bool = False
) -> list[Discovered]:
    """The services to emit: healthy ones, unchecked ones (``health is None``), and the
    unhealthy too when ``include_unhealthy`` is set. Pure; order preserved."""
    return [d for d in discovered if include_unhealthy or d.health is None or d.health.healthy]


#: The verdicts of :func:`service_verdicts`: ``emitted`` (in the documents),
#: ``unhealthy`` (matched, left out by its health check), and the skip reasons
#: of discovery except ``no_match`` (``namespace_filtered``,
#: ``annotation_filtered``, ``invalid``; see :data:`dyntoolset.discovery.SKIP_REASONS`).
SERVICE_VERDICTS = ("emitted", "unhealthy", "namespace_filtered", "annotation_filtered", "invalid")


@attrs.frozen
class ServiceVerdict:
    """What one cycle made of one Service some detector matched, filtered or refused."""

    namespace: str
    name: str
    #: The detector that matched it, filtered it or found it invalid.
    detector: str
    #: One of :data:`SERVICE_VERDICTS`.
    verdict: str
    #: Why, in words: the filter rule, the invalid reason, the failed health check.
    detail: str = ""
    #: For ``emitted`` and ``unhealthy``: what the detector made of it, health included.
    discovered: Discovered | None = None

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


@attrs.frozen
class Cycle:
    """Everything one cycle produced: what a caller writes and what it reports."""

    #: The detectors' verdicts: matches, skips with reasons, failures, timings.
    discovery: DiscoveryResult
    #: The discovered services, each with ``health`` set when a checker ran.
    checked: tuple[Discovered, ...]
    #: The services the documents hold (:func:`select_healthy` of ``checked``).
    emitted: tuple[Discovered, ...]
    #: ``{data key: document}`` as written: overrides applied.
    documents: Mapping[str, str]
    #: The merged ConfigMap, or ``None`` when the cycle ran with ``configmap=False``.
    merge: MergeResult | None
    #: Parts of ``overrides.yaml`` that could not be applied (the rest was).
    problems: tuple[str, ...] = ()
    #: The output formats rendered, in order.
    formats: tuple[str, ...] = ()


def service_verdicts(cycle: Cycle) -> list[ServiceVerdict]:
    """Every Service of ``cycle`` a detector matched, filtered or found invalid, sorted.

    Read from what the cycle decided (its emitted services, its checked
    services and discovery's :attr:`~dyntoolset.discovery.DiscoveryResult.skips`),
    never re-derived: a verdict here cannot disagree with the documents.
    Services no detector recognised (``no_match``) are left out.
    """
    emitted = {d.key for d in cycle.emitted}
    verdicts = []
    for found in cycle.checked:
        health = found.health
        if found.key in emitted:
            verdict, detail = "emitted", ""
        else:
            verdict = "unhealthy"
            if health is None:
                detail = "no health check result"
            else:
                detail = f"{health.reason}: {health.detail}" if health.detail else health.reason
        verdicts.append(
            ServiceVerdict(
                found.service.namespace, found.service.name, found.detector, verdict, detail, found
            )
        )
    for skip in cycle.discovery.skips:
        namespace, _, name = skip.service.partition("/")
        verdicts.append(ServiceVerdict(namespace, name, skip.detector, skip.reason, skip.detail))
    return sorted(verdicts, key=lambda v: (v.namespace, v.name))


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
        return cls(load_config(config_path, plugins), plugins)

    @classmethod
    def from_text(cls, text: str, source: str, plugins: PluginSet | None = None) -> Engine:
        """Like :meth:`load`, from configuration text already read (``source`` names it)."""
        plugins = plugins if plugins is not None else load_plugins()
        return cls(load_config_text(text, source, plugins), plugins)

    def discover(
        self,
        services: Iterable[Service] | Mapping[str, Service],
        memo: DiscoveryMemo | None = None,
    ) -> DiscoveryResult:
        """Only the first step: run the enabled detectors over ``services``
        (with ``memo``, only over those changed since its last run; see
        :class:`~dyntoolset.discovery.DiscoveryMemo`)."""
        return discover(services, self.detectors, memo)

    def explain(self, service: Service) -> list[Verdict]:
        """Each enabled detector's verdict on one Service, in priority order
        (:func:`dyntoolset.explain`)."""
        return explain(service, self.detectors)

    def cycle(
        self,
        services: Iterable[Service] | Mapping[str, Service],
        *,
        memo: DiscoveryMemo | None = None,
        existing: Mapping[str, Any] | None = None,
        health: HealthCheck | None = None,
        formats: Sequence[str] | None = None,
        configmap: bool = True,
        now: str | None = None,
    ) -> Cycle:
        """One whole cycle over ``services``; see the module docstring.

        ``existing`` is the current output ConfigMap (its ``overrides.yaml``
        is applied, its foreign keys kept); ``health`` checks the discovered
        services (none: every match is emitted); ``formats`` limits the
        output formats (default: the configured ones); ``configmap=False``
        stops after the documents (``merge`` is then ``None``); ``now``
        (RFC 3339) stamps a changed ConfigMap. ``memo`` carries discovery
        outcomes from one cycle to the next (the controller keeps one).

        Raises :class:`UnknownFormatError` for a format no renderer has,
        :class:`RenderError` when a renderer fails (nothing partial is
        produced), :class:`~dyntoolset.errors.InvalidConfigMapError` when
        ``existing`` has the wrong shape and
        :class:`~dyntoolset.errors.DocumentTooLargeError` over 1 MiB.
        """
        chosen = self._formats(formats)
        result = self.discover(services, memo)
        checked = tuple(health.check(result.discovered) if health else result.discovered)
        emitted = tuple(select_healthy(checked, self.config.health_checks.include_unhealthy))
        rendered = self._render(emitted, chosen)
        return self._publish(
            Cycle(result, checked, emitted, rendered, None, (), chosen), existing, configmap, now
        )

    def remerge(
        self, cycle: Cycle, existing: Mapping[str, Any] | None, now: str | None = None
    ) -> Cycle:
        """``cycle`` merged into a newer ``existing`` ConfigMap (after a write conflict).

        Discovery and health results are reused; ``overrides.yaml`` is read
        again from ``existing``, since the operator may just have changed it.
        """
        rendered = self._render(cycle.emitted, cycle.formats)
        fresh = attrs.evolve(cycle, documents=rendered, merge=None, problems=())
        return self._publish(fresh, existing, True, now)

    def _formats(self, formats: Sequence[str] | None) -> tuple[str, ...]:
        chosen = tuple(self.config.output.formats or ()) if formats is None else tuple(formats)
        unknown = [name for name in chosen if name not in self.renderers]
        if unknown:
            raise UnknownFormatError(unknown[0], sorted(self.renderers))
        return chosen

    def _render(self, discovered: Sequence[Discovered], formats: Sequence[str]) -> dict[str, str]:
        """``{data key: document}``; all documents or a :class:`RenderError`."""
        documents = {}
        for name in formats:
            renderer = self.renderers[name]
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

    def _publish(
        self, cycle: Cycle, existing: Mapping[str, Any] | None, configmap: bool, now: str | None
    ) -> Cycle:
        """Apply ``overrides.yaml`` of ``existing`` and, with ``configmap``, merge into it."""
        documents, problems = self._apply_overrides(dict(cycle.documents), cycle.formats, existing)
        for text in problems:
            log.warning("%s", text)
        merge = None
        if configmap:
            stamp = now or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            merged = merge_configmap(documents, self.config.output, existing, stamp)
            # The merge's own warnings (an immutable ConfigMap that would change)
            # join the overrides problems: callers report one list.
            problems = [*problems, *merged.problems]
            merge = attrs.evolve(merged, problems=tuple(problems))
        return attrs.evolve(cycle, documents=documents, merge=merge, problems=tuple(problems))

    def _apply_overrides(
        self, documents: dict[str, str], formats: Sequence[str], existing: Mapping[str, Any] | None
    ) -> tuple[dict[str, str], list[str]]:
        """The operator's ``overrides.yaml`` applied by the renderers that support it.

        Overrides that cannot be applied are left out and described; a
        renderer that fails while applying them is a :class:`RenderError`.
        """
        overrides, problem = read_overrides(existing)
        problems = [problem] if problem else []
        if overrides is None:
            return documents, problems
        for name in formats:
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
