"""The discovery engine: Services in, discovered services out.

A pure function of (Service snapshots, configured detectors): no I/O, no
clock besides timing. For each Service the enabled detectors run in priority
order and the first match wins. Namespace filters and required annotations
are applied before a detector sees the Service. A detector that raises is
isolated: the error is counted and logged, and the next detector still gets
its turn.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from dyntoolset.config import Config, DetectorConfig
from dyntoolset.detector import DetectContext, Detector
from dyntoolset.errors import InvalidService
from dyntoolset.model import Discovered, Service
from dyntoolset.plugins import PluginSet

log = logging.getLogger(__name__)

#: Why a Service produced no toolset.
SKIP_REASONS = ("no_match", "namespace_filtered", "annotation_filtered", "invalid")


@attrs.frozen
class ActiveDetector:
    """An enabled detector, instantiated, with its configuration and context."""

    config: DetectorConfig
    detector: Detector[Any]
    ctx: DetectContext[Any]

    @property
    def name(self) -> str:
        return self.config.name


def create_detectors(config: Config, plugins: PluginSet) -> list[ActiveDetector]:
    """The enabled detectors of ``config`` in run order (the requirements' ``CreateDetectors`` of BR-TOOLSET-037)."""
    active = []
    for detector_config in config.enabled_detectors():
        info = plugins.detectors.get(detector_config.name)
        if info is None:  # configured through plugin.path, and that failed to load
            continue
        detector: Detector[Any] = info.cls()
        configured_path = detector_config.health_check.path
        ctx: DetectContext[Any] = DetectContext(
            settings=detector_config.settings,
            cluster_domain=config.cluster_domain,
            health_path=configured_path if configured_path is not None else detector.health_path,
            health_path_configured=configured_path is not None,
            allowed_hosts=tuple(config.health_checks.allowed_hosts),
            health_check=detector_config.health_check.kind or detector.health_check,
        )
        active.append(ActiveDetector(detector_config, detector, ctx))
    return active


@attrs.frozen
class Skip:
    """A Service left out, and why."""

    service: str  # namespace/name
    reason: str  # one of SKIP_REASONS
    detector: str = ""
    detail: str = ""


@attrs.frozen
class DetectorFailure:
    """A detector raised on a Service."""

    detector: str
    service: str
    error: str
    error_type: str = "exception"


@attrs.define
class DetectorStats:
    """Per-detector numbers of one discovery run."""

    seconds: float = 0.0
    found: int = 0
    errors: int = 0


@attrs.define
class DiscoveryResult:
    """The outcome of one discovery run."""

    #: Discovered services, sorted by namespace/name, one per Service.
    discovered: list[Discovered]
    #: Per detector (in run order): time spent, services found, errors.
    detectors: dict[str, DetectorStats]
    #: How many Services were skipped, by reason (every reason present, zero included).
    skip_counts: Counter[str]
    #: Services skipped as ``invalid`` or filtered, with details (not ``no_match``).
    skips: list[Skip]
    failures: list[DetectorFailure]
    services_seen: int
    seconds: float

    def by_namespace(self) -> Counter[str]:
        """Discovered services per namespace."""
        return Counter(d.service.namespace for d in self.discovered)


def _would_match(active: ActiveDetector, service: Service) -> bool:
    try:
        return active.detector.detect(service, active.ctx) is not None
    except Exception:  # noqa: BLE001 - only used to explain a skip
        return False


def discover(services: Iterable[Service], detectors: Sequence[ActiveDetector]) -> DiscoveryResult:
    """Run ``detectors`` (already in priority order) over ``services``.

    Services with the same namespace/name are de-duplicated (the last one
    wins, as with ``kubectl apply`` of several documents).

    The loop is detector-major: each detector runs over the Services no
    earlier detector matched. That is the same as trying the detectors in
    priority order per Service, first match wins, and it lets each
    detector's time be taken once per run instead of around every call.
    """
    started = time.perf_counter()
    unique = {s.key: s for s in services}
    remaining = [(key, unique[key]) for key in sorted(unique)]
    stats = {a.name: DetectorStats() for a in detectors}
    matched: dict[str, Discovered] = {}
    invalid: dict[str, Skip] = {}
    filtered: dict[str, list[tuple[ActiveDetector, str]]] = {}
    failures: list[DetectorFailure] = []
    for active in detectors:
        stat = stats[active.name]
        t0 = time.perf_counter()
        remaining = _run_detector(active, remaining, stat, matched, invalid, filtered, failures)
        stat.seconds = time.perf_counter() - t0
        if stat.errors > 1:
            log.error(
                "detector %s failed on %d Services in this run (the first is logged above "
                "with its traceback; the others at debug level)",
                active.name,
                stat.errors,
            )
    skip_counts: Counter[str] = Counter(dict.fromkeys(SKIP_REASONS, 0))
    skips: list[Skip] = []
    for key in sorted(unique.keys() - matched.keys()):
        skip = invalid.get(key) or _explain(key, unique[key], filtered.get(key, []))
        skip_counts[skip.reason] += 1
        if skip.reason != "no_match":
            skips.append(skip)
            # Reported by the caller from ``skips`` (the CLI's summary, the
            # controller once per Service): a run repeats every cycle, a log
            # line here would repeat with it.
            log.debug(
                "skipping Service %s (%s%s): %s",
                key,
                skip.reason,
                f", detector {skip.detector}" if skip.detector else "",
                skip.detail,
            )
    return DiscoveryResult(
        discovered=[matched[key] for key in sorted(matched)],
        detectors=stats,
        skip_counts=skip_counts,
        skips=skips,
        failures=sorted(failures, key=lambda f: (f.service, f.detector)),
        services_seen=len(unique),
        seconds=time.perf_counter() - started,
    )


def _run_detector(
    active: ActiveDetector,
    services: list[tuple[str, Service]],
    stat: DetectorStats,
    matched: dict[str, Discovered],
    invalid: dict[str, Skip],
    filtered: dict[str, list[tuple[ActiveDetector, str]]],
    failures: list[DetectorFailure],
) -> list[tuple[str, Service]]:
    """One detector over ``(key, Service)`` pairs; returns those still unmatched and valid."""
    detector, ctx, cfg = active.detector, active.ctx, active.config
    namespaces = None if cfg.namespaces.allows_all else cfg.namespaces
    annotations = cfg.required_annotations or None
    unmatched: list[tuple[str, Service]] = []
    for pair in services:
        key, service = pair
        if namespaces is not None and not namespaces.allows(service.namespace):
            filtered.setdefault(key, []).append((active, "namespace_filtered"))
            unmatched.append(pair)
            continue
        if annotations is not None and not annotations.satisfied_by(service.annotations):
            filtered.setdefault(key, []).append((active, "annotation_filtered"))
            unmatched.append(pair)
            continue
        try:
            found = detector.detect(service, ctx)
            if found is not None:
                found = attrs.evolve(found, toolsets=tuple(detector.toolsets(found, ctx.settings)))
        except InvalidService as exc:
            # The Service asked for this detector and is malformed: later
            # detectors must not take it either.
            invalid[key] = Skip(key, "invalid", active.name, exc.reason)
            continue
        except Exception as exc:  # a broken detector must not stop the run
            stat.errors += 1
            failures.append(DetectorFailure(active.name, key, repr(exc)))
            # A broken detector usually fails on every Service: the first
            # failure with its traceback, the rest counted (see discover()).
            log.log(
                logging.ERROR if stat.errors == 1 else logging.DEBUG,
                "detector %s failed on Service %s: %r",
                active.name,
                key,
                exc,
                exc_info=stat.errors == 1,
            )
            unmatched.append(pair)
            continue
        if found is None:
            unmatched.append(pair)
        else:
            stat.found += 1
            matched[key] = found
    return unmatched


def _explain(key: str, service: Service, filtered: list[tuple[ActiveDetector, str]]) -> Skip:
    """Why nothing matched: a filter, if a filtered detector would have matched.

    Only runs for Services nothing matched and some filter held back, so the
    extra detector calls stay off the common path.
    """
    for active, reason in filtered:
        if _would_match(active, service):
            what = "namespace" if reason == "namespace_filtered" else "required annotations"
            return Skip(
                key, reason, active.name, f"matches {active.name} but its {what} filter excludes it"
            )
    return Skip(key, "no_match")
