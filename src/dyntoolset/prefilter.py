"""Detector prefilters: cheap necessary conditions, looked up once per Service.

Most Services in a cluster are not observability backends, and most
detectors recognise a backend by a few label values (``app.kubernetes.io/name:
loki``), a chart-label prefix (``helm.sh/chart: loki-…``), an annotation or a
port name. A detector that states those conditions as data in its
:class:`Prefilter` is called only for the Services that meet at least one of
them: discovery compiles every enabled detector's prefilter into one
:class:`PrefilterIndex` and asks it, once per Service, which detectors to
consult. A Service that meets none costs a handful of dictionary look-ups
instead of one ``detect`` call per detector (issue 15, workload 2).

A prefilter is a *promise* by its detector: ``detect`` returns ``None`` (and
raises nothing) for every Service that meets none of the conditions. A
detector without one (``prefilter = None``, the default) is consulted on
every Service, as before. :func:`dyntoolset.testing.check_prefilter` checks
the promise against a detector's test Services.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from dyntoolset.model import Service

__all__ = ["Prefilter", "PrefilterIndex"]

_NONE: Mapping[str, Collection[str]] = MappingProxyType({})
_DIGITS = "0123456789"
#: The labels a Helm chart's name and version are read from: the recommended
#: ``helm.sh/chart`` and the legacy ``chart`` of older charts.
CHART_LABELS = ("helm.sh/chart", "chart")


def _strings(field: str, values: Any) -> frozenset[str]:
    if isinstance(values, str) or not isinstance(values, Collection):
        raise TypeError(f"Prefilter {field} must be a collection of strings, got {values!r}")
    for value in values:
        if not isinstance(value, str) or not value:
            raise TypeError(f"Prefilter {field} must hold non-empty strings, got {value!r}")
    return frozenset(values)


def _string_map(field: str, mapping: Any) -> Mapping[str, frozenset[str]]:
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"Prefilter {field} must map label keys to collections of strings, got {mapping!r}"
        )
    checked = {}
    for key, values in mapping.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"Prefilter {field} keys must be non-empty strings, got {key!r}")
        strings = _strings(f"{field}[{key!r}]", values)
        if not strings:
            raise ValueError(f"Prefilter {field}[{key!r}] is empty: it could never be met")
        checked[key] = strings
    return MappingProxyType(checked)


@attrs.frozen(init=False)
class Prefilter:
    """Necessary conditions for a detector to take (or refuse as invalid) a Service.

    A Service *meets* the prefilter when at least one condition holds:

    ``label_values``
        label key → values: the Service has the label with one of the values.
    ``label_prefixes`` / ``label_suffixes``
        label key → prefixes / suffixes: the label's value starts / ends with
        one of them (``{"helm.sh/chart": ["loki-"]}`` for a chart label).
    ``label_keys``
        the Service has one of these labels, whatever its value.
    ``annotation_keys``
        the Service has one of these annotations, whatever its value.
    ``port_names``
        one of the Service's ports has one of these names.
    ``charts``
        a shorthand for Helm charts: the ``helm.sh/chart`` (or legacy
        ``chart``) label is ``<chart>-<version>``, the version starting with
        a digit (``charts=["grafana"]`` admits ``grafana-8.5.1`` but not
        ``grafana-agent-0.4``). Stored as :attr:`label_prefixes`.

    Declare it as a class attribute of the detector::

        class LokiDetector(Detector[LokiSettings]):
            name = "loki"
            prefilter = Prefilter(
                label_values={"app.kubernetes.io/name": ["loki"], "app": ["loki"]},
                label_prefixes={"helm.sh/chart": ["loki-"]},
            )

    The conditions must be *necessary*, not sufficient: ``detect`` still
    decides, and may refuse most Services that meet them. Any Service that
    ``detect`` matches or raises :class:`~dyntoolset.errors.InvalidService`
    for must meet at least one condition, or discovery will never show it
    to the detector. Wrong types and a prefilter with no condition are
    refused when the class is defined.
    """

    label_values: Mapping[str, frozenset[str]]
    label_prefixes: Mapping[str, frozenset[str]]
    label_suffixes: Mapping[str, frozenset[str]]
    label_keys: frozenset[str]
    annotation_keys: frozenset[str]
    port_names: frozenset[str]

    def __init__(
        self,
        *,
        label_values: Mapping[str, Collection[str]] = _NONE,
        label_prefixes: Mapping[str, Collection[str]] = _NONE,
        label_suffixes: Mapping[str, Collection[str]] = _NONE,
        label_keys: Collection[str] = (),
        annotation_keys: Collection[str] = (),
        port_names: Collection[str] = (),
        charts: Collection[str] = (),
    ) -> None:
        prefixes = dict(_string_map("label_prefixes", label_prefixes))
        versions = [f"{chart}-{digit}" for chart in _strings("charts", charts) for digit in _DIGITS]
        if versions:
            for key in CHART_LABELS:
                prefixes[key] = prefixes.get(key, frozenset()) | frozenset(versions)
        self.__attrs_init__(
            _string_map("label_values", label_values),
            MappingProxyType(prefixes),
            _string_map("label_suffixes", label_suffixes),
            _strings("label_keys", label_keys),
            _strings("annotation_keys", annotation_keys),
            _strings("port_names", port_names),
        )

    def __attrs_post_init__(self) -> None:
        if not any(attrs.astuple(self, recurse=False)):
            raise ValueError(
                "a Prefilter needs at least one condition: with none it could never be met "
                "(leave the detector's prefilter at None to be consulted on every Service)"
            )

    def admits(self, service: Service) -> bool:
        """Whether ``service`` meets at least one condition.

        The plain, one-detector reading of the conditions, for tests and
        ``explain``: discovery uses the compiled :class:`PrefilterIndex`.
        """
        labels, annotations = service.labels, service.annotations
        for key, values in self.label_values.items():
            if labels.get(key) in values:
                return True
        for key, prefixes in self.label_prefixes.items():
            value = labels.get(key)
            if value is not None and any(value.startswith(p) for p in prefixes):
                return True
        for key, suffixes in self.label_suffixes.items():
            value = labels.get(key)
            if value is not None and any(value.endswith(s) for s in suffixes):
                return True
        if any(key in labels for key in self.label_keys):
            return True
        if any(key in annotations for key in self.annotation_keys):
            return True
        return any(port.name in self.port_names for port in service.ports)


# One label key's rules in the compiled index: the detectors (as bits) for
# which the key's presence suffices, those for each exact value, and the
# prefix and suffix rules.
@attrs.frozen(slots=True)
class _KeyRules:
    present: int
    values: Mapping[str, int]
    prefixes: tuple[tuple[tuple[str, ...], int], ...]
    suffixes: tuple[tuple[tuple[str, ...], int], ...]

    def mask(self, value: str) -> int:
        """The detectors a label of this key with ``value`` admits."""
        mask = self.present | self.values.get(value, 0)
        for starts, bit in self.prefixes:
            if value.startswith(starts):
                mask |= bit
        for ends, bit in self.suffixes:
            if value.endswith(ends):
                mask |= bit
        return mask


#: How many distinct values of one label key the index remembers the mask of.
#: A cluster repeats the values detectors look at (names, components, chart
#: labels) across thousands of Services; the bound keeps a key with unique
#: values (an instance name a detector only tests for presence) from growing
#: without limit.
VALUE_CACHE_SIZE = 4096


class PrefilterIndex:
    """Every enabled detector's prefilter, compiled into one lookup.

    Detector ``i`` (in the sequence given) is bit ``1 << i`` of the masks
    :meth:`candidates` returns. Detectors without a prefilter are in every
    mask.
    """

    def __init__(self, prefilters: Sequence[Prefilter | None]) -> None:
        #: The detectors without a prefilter: in every mask.
        self.always = 0
        present: dict[str, int] = {}
        values: dict[str, dict[str, int]] = {}
        prefixes: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        suffixes: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        annotations: dict[str, int] = {}
        ports: dict[str, int] = {}
        for position, prefilter in enumerate(prefilters):
            bit = 1 << position
            if prefilter is None:
                self.always |= bit
                continue
            for key in prefilter.label_keys:
                present[key] = present.get(key, 0) | bit
            for key, wanted in prefilter.label_values.items():
                by_value = values.setdefault(key, {})
                for value in wanted:
                    by_value[value] = by_value.get(value, 0) | bit
            for key, starts in prefilter.label_prefixes.items():
                prefixes.setdefault(key, []).append((tuple(sorted(starts)), bit))
            for key, ends in prefilter.label_suffixes.items():
                suffixes.setdefault(key, []).append((tuple(sorted(ends)), bit))
            for key in prefilter.annotation_keys:
                annotations[key] = annotations.get(key, 0) | bit
            for name in prefilter.port_names:
                ports[name] = ports.get(name, 0) | bit
        keys = present.keys() | values.keys() | prefixes.keys() | suffixes.keys()
        self._rules = {
            key: _KeyRules(
                present=present.get(key, 0),
                values=values.get(key, {}),
                prefixes=tuple(prefixes.get(key, ())),
                suffixes=tuple(suffixes.get(key, ())),
            )
            for key in keys
        }
        # Per indexed label key: value -> mask, filled as values are met.
        self._masks: dict[str, dict[str, int]] = {key: {} for key in keys}
        self._annotations = tuple(annotations.items())
        self._ports = ports

    def candidates(self, service: Service) -> int:
        """The detectors to consult about ``service``, as a bit mask.

        Runs once per Service per discovery: one dictionary look-up per
        label, a second per label a prefilter names (its value's mask,
        computed the first time the value is met), and one per port.
        """
        mask = self.always
        labels = service.labels
        if labels:
            masks_of = self._masks
            for key, value in labels.items():
                masks = masks_of.get(key)
                if masks is not None:
                    found = masks.get(value)
                    if found is None:
                        found = self._rules[key].mask(value)
                        if len(masks) < VALUE_CACHE_SIZE:
                            masks[value] = found
                    mask |= found
        if self._annotations:
            annotations = service.annotations
            if annotations:
                for key, bit in self._annotations:
                    if key in annotations:
                        mask |= bit
        if self._ports:
            ports = self._ports
            for port in service.ports:
                mask |= ports.get(port.name, 0)
        return mask
