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
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from dyntoolset.config import Config, DetectorConfig
from dyntoolset.detector import DetectContext, Detector
from dyntoolset.errors import InvalidService
from dyntoolset.matching import AnnotationRequirements, NamespaceFilter
from dyntoolset.model import Discovered, Service
from dyntoolset.plugins import PluginSet
from dyntoolset.prefilter import PrefilterIndex

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


#: What a Service's consultation left to record: ``(detector position,
#: outcome, value)`` for each outcome other than a plain no-match, in order.
_Events = tuple[tuple[int, str, Any], ...]


class DiscoveryMemo:
    """Each Service's discovery outcome, kept between runs over the same detectors.

    A detector is a pure function of the Service and its (fixed) context, so
    a Service whose snapshot object is the one of the last run gets the same
    outcome: :func:`discover` replays it (matches, skips, failures and their
    log lines, counted again) instead of consulting the detectors. The live
    controller's cache keeps a Service's snapshot until the Service changes,
    so a reconcile consults detectors only about the Services that changed
    since the last one. Keyed by namespace/name and checked by identity
    (``is``): a changed Service is a new snapshot and is decided afresh.

    One memo serves one caller, one run at a time; a run with other
    detectors (a reloaded configuration) starts it afresh. Per-detector
    ``seconds`` count only the detectors actually consulted.
    """

    def __init__(self) -> None:
        self._detectors: Sequence[ActiveDetector] | None = None
        self._index: PrefilterIndex | None = None
        self._entries: dict[str, tuple[Service, _Events]] = {}
        #: Services decided afresh / replayed in the last run.
        self.decided = 0
        self.replayed = 0

    def _for(self, detectors: Sequence[ActiveDetector]) -> PrefilterIndex:
        if self._detectors is not detectors or self._index is None:
            self._detectors = detectors
            self._index = PrefilterIndex([a.detector.prefilter for a in detectors])
            self._entries = {}
        return self._index


def discover(
    services: Iterable[Service] | Mapping[str, Service],
    detectors: Sequence[ActiveDetector],
    memo: DiscoveryMemo | None = None,
) -> DiscoveryResult:
    """Run ``detectors`` (already in priority order) over ``services``.

    Services with the same namespace/name are de-duplicated (the last one
    wins, as with ``kubectl apply`` of several documents). A mapping of
    namespace/name to Service is taken as already de-duplicated.

    Per Service, the detectors' prefilters (see :mod:`dyntoolset.prefilter`)
    are looked up at once; only the detectors whose prefilter the Service
    meets, and those without one, are consulted, in priority order, the
    first match winning. For the Services no detector can take, which are
    nearly all of a cluster's, that lookup is the whole cost. With a
    ``memo``, Services unchanged since the memo's last run are not looked at
    again (see :class:`DiscoveryMemo`).
    """
    started = time.perf_counter()
    unique = services if isinstance(services, Mapping) else {s.key: s for s in services}
    index = (
        memo._for(detectors)
        if memo is not None
        else PrefilterIndex([a.detector.prefilter for a in detectors])
    )
    run = _Run(detectors)
    candidates, decide, apply = index.candidates, run.decide, run.apply
    # In input order: only the few Services something matched or held back
    # are sorted (in result()), not every Service of the cluster.
    if memo is None:
        for key, service in unique.items():
            mask = candidates(service)
            if mask:
                apply(key, decide(service, mask))
        return run.result(unique, started)
    previous, entries = memo._entries, {}
    replayed = 0
    for key, service in unique.items():
        entry = previous.get(key)
        if entry is not None and entry[0] is service:
            replayed += 1
        else:
            mask = candidates(service)
            entry = (service, decide(service, mask) if mask else ())
        entries[key] = entry
        if entry[1]:
            apply(key, entry[1])
    memo._entries = entries
    memo.replayed, memo.decided = replayed, len(unique) - replayed
    return run.result(unique, started)


class _Run:
    """The book-keeping of one :func:`discover` call: outcomes per Service and detector."""

    def __init__(self, detectors: Sequence[ActiveDetector]) -> None:
        self.detectors = detectors
        self.steps = [_step(a) for a in detectors]
        self.stats = [DetectorStats() for _ in detectors]
        self.matched: dict[str, Discovered] = {}
        self.invalid: dict[str, Skip] = {}
        self.filtered: dict[str, list[tuple[ActiveDetector, str]]] = {}
        self.failures: list[DetectorFailure] = []

    def decide(self, service: Service, mask: int) -> _Events:
        """Consult the detectors of ``mask`` about ``service`` in priority order.

        Returns what there is to record (see :meth:`apply`): every outcome
        but a plain no-match, up to the first decisive one.
        """
        clock = time.perf_counter
        events: list[tuple[int, str, Any]] = []
        while mask:
            lowest = mask & -mask
            mask ^= lowest
            position = lowest.bit_length() - 1
            t0 = clock()
            outcome, value = self.steps[position](service)
            self.stats[position].seconds += clock() - t0
            if outcome is _NO_MATCH:
                continue
            events.append((position, outcome, value))
            if outcome in DECISIVE:
                break
        return tuple(events)

    def apply(self, key: str, events: _Events) -> None:
        """Record one Service's outcomes: a match, an invalid verdict, failures, filters."""
        for position, outcome, value in events:
            stat = self.stats[position]
            if outcome is _MATCH:
                stat.found += 1
                self.matched[key] = value
                return
            active = self.detectors[position]
            if outcome is _INVALID:
                self.invalid[key] = Skip(key, "invalid", active.name, value)
                return
            if outcome is _RAISED:  # a broken detector must not stop the run
                stat.errors += 1
                self.failures.append(DetectorFailure(active.name, key, repr(value)))
                # A broken detector usually fails on every Service: the first
                # failure with its traceback, the rest counted (see result()).
                log.log(
                    logging.ERROR if stat.errors == 1 else logging.DEBUG,
                    "detector %s failed on Service %s: %r",
                    active.name,
                    key,
                    value,
                    exc_info=value if stat.errors == 1 else None,
                )
                _detach_traceback(value)
            else:
                self.filtered.setdefault(key, []).append((active, outcome))

    def result(self, unique: Mapping[str, Service], started: float) -> DiscoveryResult:
        """The run's :class:`DiscoveryResult`, with its skips explained."""
        for active, stat in zip(self.detectors, self.stats, strict=True):
            if stat.errors > 1:
                log.error(
                    "detector %s failed on %d Services in this run (the first is logged "
                    "above with its traceback; the others at debug level)",
                    active.name,
                    stat.errors,
                )
        matched, invalid, filtered = self.matched, self.invalid, self.filtered
        skip_counts: Counter[str] = Counter(dict.fromkeys(SKIP_REASONS, 0))
        skips: list[Skip] = []
        # Filtered by one detector and matched by a later one is a match.
        held_back = (invalid.keys() | filtered.keys()) - matched.keys()
        no_match = len(unique) - len(matched) - len(held_back)
        for key in sorted(held_back):
            skip = invalid.get(key) or _explain(key, unique[key], filtered[key])
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
        skip_counts["no_match"] += no_match
        return DiscoveryResult(
            discovered=[matched[key] for key in sorted(matched)],
            detectors={a.name: stat for a, stat in zip(self.detectors, self.stats, strict=True)},
            skip_counts=skip_counts,
            skips=skips,
            failures=sorted(self.failures, key=lambda f: (f.service, f.detector)),
            services_seen=len(unique),
            seconds=time.perf_counter() - started,
        )


def _detach_traceback(error: BaseException) -> None:
    """Keep ``error``'s stack as text (a note, printed with it when a replay
    logs it again) and drop its traceback object.

    A traceback keeps the frames it passed through, and each frame its caller
    (``frame.clear()`` does not drop ``f_back``), so a failure kept after its
    run, in a memo or merely as cyclic garbage, kept the whole run alive: a
    50,000-Service dump until the next collection (1.3 s of it at the end of
    ``dyntoolset discover``), a memo's old cycle until the Service changed.
    """
    if error.__traceback__ is not None:
        stack = "".join(traceback.format_tb(error.__traceback__)).rstrip()
        error.add_note(f"Traceback of the first failure (most recent call last):\n{stack}")
        error.__traceback__ = None


# What one detector makes of one Service (the first element of _step's pair).
_MATCH, _NO_MATCH, _INVALID, _RAISED = "match", "no_match", "invalid", "raised"
_NAMESPACE_FILTERED, _ANNOTATION_FILTERED = "namespace_filtered", "annotation_filtered"
#: Outcomes that settle a Service: no later detector sees it. A match, because
#: the first match wins; invalid, because the Service asked for this detector
#: and is malformed, so later detectors must not take it either.
DECISIVE = frozenset({_MATCH, _INVALID})


def _filters(
    active: ActiveDetector,
) -> tuple[NamespaceFilter | None, AnnotationRequirements | None]:
    """The detector's filters, ``None`` where it has none (the engine skips the check)."""
    cfg = active.config
    namespaces = None if cfg.namespaces.allows_all else cfg.namespaces
    return namespaces, cfg.required_annotations or None


def _step(
    active: ActiveDetector, check_prefilter: bool = False
) -> Callable[[Service], tuple[str, Any]]:
    """One detector's step, ready to apply to Services: its filters, then
    ``detect`` and ``toolsets``.

    The one place both :func:`discover` and :func:`explain` decide a
    (detector, Service) pair. The step returns ``(outcome, value)``:
    ``(_MATCH, Discovered)``, ``(_INVALID, reason)``, ``(_RAISED,
    exception)``, ``(_NO_MATCH, None)`` or ``(_NAMESPACE_FILTERED |
    _ANNOTATION_FILTERED, None)``. A plain pair, not an object, and a closure
    over what it needs (filters, bound methods, context) looked up once per
    detector: it runs once per Service and detector on every cycle, and
    those lookups were most of discovery's own cost (issue 15, workload 2).
    """
    namespaces, annotations = _filters(active)
    detector = active.detector
    detect, toolsets, ctx = detector.detect, detector.toolsets, active.ctx
    # discover() consults a detector only when the prefilter index says so;
    # explain() asks the step to check it, after the filters, as the same
    # verdict: a Service the prefilter keeps out is a plain no-match.
    admits = detector.prefilter.admits if check_prefilter and detector.prefilter else None

    def consult(service: Service) -> tuple[str, Any]:
        if namespaces is not None and not namespaces.allows(service.namespace):
            return _NAMESPACE_FILTERED, None
        if annotations is not None and not annotations.satisfied_by(service.annotations):
            return _ANNOTATION_FILTERED, None
        if admits is not None and not admits(service):
            return _NO_MATCH_PAIR
        try:
            found = detect(service, ctx)
            if found is None:
                return _NO_MATCH_PAIR
            specs = tuple(toolsets(found, ctx.settings))
        except InvalidService as exc:
            # The reason, not the exception: an exception kept beyond this
            # call keeps its traceback's frames alive, and with them (through
            # each frame's caller) the whole run that made it.
            return _INVALID, exc.reason
        except Exception as exc:  # noqa: BLE001 - the caller reports it; a broken detector must not stop a run
            return _RAISED, exc
        return _MATCH, attrs.evolve(found, toolsets=specs)

    return consult


_NO_MATCH_PAIR = (_NO_MATCH, None)


def _explain(key: str, service: Service, filtered: list[tuple[ActiveDetector, str]]) -> Skip:
    """Why nothing matched: a filter, if a filtered detector would have matched.

    Only runs for Services nothing matched and some filter held back, so the
    extra detector calls stay off the common path.
    """
    for active, reason in filtered:
        if _would_match(active, service):
            return Skip(
                key,
                reason,
                active.name,
                f"matches {active.name}, but {_filter_detail(active, service, reason)}",
            )
    return Skip(key, "no_match")


def _filter_detail(active: ActiveDetector, service: Service, outcome: str) -> str:
    """Which rule of ``active``'s filters holds ``service`` back, in words.

    The one wording of a filtered verdict: :func:`discover`'s skips (the
    services API, the CLI's summary) and :func:`explain` both use it.
    """
    if outcome == _NAMESPACE_FILTERED:
        return (
            f"namespace {service.namespace!r} is not allowed by "
            f"namespaces {list(active.config.namespaces.patterns)}"
        )
    required = active.config.required_annotations
    return (
        f"required annotation clause {required.unmet_clause(service.annotations)!r}"
        f" of required_annotations {list(required.spec)} is not met"
    )


# -- explain ------------------------------------------------------------------

#: The verdicts of :func:`explain`, one per enabled detector.
VERDICTS = (
    "match",  # this detector takes the Service
    "not_consulted",  # an earlier detector matched it or found it invalid
    "namespace_filtered",  # the detector's ``namespaces`` exclude the Service's namespace
    "annotation_filtered",  # a clause of ``required_annotations`` is unmet
    "invalid",  # the Service asked for this detector and is malformed
    "no_match",  # the detector looked and does not recognise it
    "error",  # the detector raised
)


@attrs.frozen
class Verdict:
    """One enabled detector's verdict on one Service (see :func:`explain`)."""

    detector: str
    priority: int
    verdict: str  # one of VERDICTS
    #: Why, in words: the filter and its patterns, the unmet clause, the
    #: invalid reason, the exception, or which detector came first.
    detail: str = ""
    #: For ``match``: what the detector made of the Service (toolsets included).
    discovered: Discovered | None = None
    #: For the two filtered verdicts: whether the detector would have
    #: matched without its filter (the usual "why is it missing?" answer).
    would_match: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``dyntoolset explain --json``; the services API)."""
        row: dict[str, Any] = {
            "detector": self.detector,
            "priority": self.priority,
            "verdict": self.verdict,
            "detail": self.detail,
        }
        if self.verdict in ("namespace_filtered", "annotation_filtered"):
            row["would_match"] = self.would_match
        found = self.discovered
        if found is not None:
            row.update(
                type=found.type,
                endpoint=found.endpoint,
                port=None
                if found.port is None
                else {"port": found.port.port, "name": found.port.name},
                health_path=found.health_path,
                health_check=found.health_check,
                toolsets=[t.kind for t in found.toolsets],
            )
        return row


def explain(service: Service, detectors: Sequence[ActiveDetector]) -> list[Verdict]:
    """Every detector's verdict on ``service``, in ``detectors`` (priority) order.

    The same step as :func:`discover` (filters, ``detect``, ``toolsets``)
    per detector, stopping at the first match or invalid verdict as
    discovery does; the detectors after it are ``not_consulted``. A detector
    whose prefilter the Service does not meet is ``no_match`` without being
    called, as in discovery (its filters are still reported). Pure: no
    logging, no statistics.
    """
    verdicts: list[Verdict] = []
    decided_by = ""
    for active in detectors:
        priority = active.config.priority
        if decided_by:
            verdicts.append(Verdict(active.name, priority, "not_consulted", decided_by))
            continue
        outcome, value = _step(active, check_prefilter=True)(service)
        if outcome in DECISIVE:
            what = "matched first" if outcome is _MATCH else "found the Service invalid"
            decided_by = f"{active.name} (priority {priority}) {what}"
        if outcome is _MATCH:
            verdicts.append(Verdict(active.name, priority, "match", discovered=value))
        elif outcome is _INVALID:
            verdicts.append(Verdict(active.name, priority, "invalid", value))
        elif outcome is _RAISED:
            verdicts.append(Verdict(active.name, priority, "error", repr(value)))
        elif outcome is _NO_MATCH:
            verdicts.append(Verdict(active.name, priority, "no_match"))
        else:
            verdicts.append(
                Verdict(
                    active.name,
                    priority,
                    outcome,
                    _filter_detail(active, service, outcome),
                    would_match=_would_match(active, service),
                )
            )
    return verdicts
