"""What a configuration reload changes, in words, and what it cannot change at run time.

Both configurations are compared as plain data (:func:`dyntoolset.convert.unstructure`,
flattened to dotted keys), not with ``==`` on the objects: a ``plugin.path``
detector loaded again for the new configuration has a new ``Settings`` class,
so equal settings would otherwise look different.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from dyntoolset.config import Config
from dyntoolset.convert import unstructure
from dyntoolset.kube.services import namespace_scope

__all__ = ["ConfigDiff", "diff_configs", "pin_restart_settings"]

#: Keys of a detector's block reported on their own rather than as "setting changed".
_OWN_LINES = ("enabled", "priority")
#: Keys that say where a configuration came from, not what it is.
_NOT_CONFIGURATION = ("source",)


@attrs.frozen
class ConfigDiff:
    """The differences between the running configuration and a new one."""

    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    #: ``(detector, old priority, new priority)``.
    reprioritised: tuple[tuple[str, int, int], ...] = ()
    #: ``(detector, dotted key)``: a detector's settings, health check, filters.
    detector_settings: tuple[tuple[str, str], ...] = ()
    #: ``(dotted key, old, new)``: the sections outside ``detectors``.
    global_settings: tuple[tuple[str, Any, Any], ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the two configurations have the same effect (settings of detectors
        disabled in both do not count)."""
        return not self.lines()

    def lines(self) -> tuple[str, ...]:
        """One human line per change (``detector loki enabled``, ``grafana priority 50 -> 80``)."""
        return (
            *(f"detector {name} enabled" for name in self.enabled),
            *(f"detector {name} disabled" for name in self.disabled),
            *(f"detector {name} priority {old} -> {new}" for name, old, new in self.reprioritised),
            *(f"detector {name} setting {key} changed" for name, key in self.detector_settings),
            *(
                f"setting {key} changed: {old!r} -> {new!r}"
                for key, old, new in self.global_settings
            ),
        )

    def as_fields(self) -> dict[str, Any]:
        """The same, as structured log fields."""
        return {
            "enabled": list(self.enabled),
            "disabled": list(self.disabled),
            "reprioritised": [
                {"detector": name, "from": old, "to": new} for name, old, new in self.reprioritised
            ],
            "settings_changed": [
                {"detector": name, "key": key} for name, key in self.detector_settings
            ],
            "global_settings_changed": [key for key, _, _ in self.global_settings],
        }

    def health_changed(self) -> bool:
        """Whether the health checker must be rebuilt (its settings are global and per detector)."""
        return any(
            key.startswith("health_checks.") or key == "cluster_domain"
            for key, _, _ in self.global_settings
        ) or any(key.startswith("health_check") for _, key in self.detector_settings)


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """What changes from ``old`` to ``new`` (sorted, stable)."""
    enabled, disabled, reprioritised, detector_settings = [], [], [], []
    for name in sorted(old.detectors.keys() | new.detectors.keys()):
        before, after = old.detectors.get(name), new.detectors.get(name)
        was = before is not None and before.enabled
        now = after is not None and after.enabled
        if now and not was:
            enabled.append(name)
        elif was and not now:
            disabled.append(name)
        if before is None or after is None or not (was and now):
            continue  # a disabled detector's priority and settings do not matter
        if before.priority != after.priority:
            reprioritised.append((name, before.priority, after.priority))
        old_flat = _flatten(unstructure(before), skip=_OWN_LINES)
        new_flat = _flatten(unstructure(after), skip=_OWN_LINES)
        detector_settings += [
            (name, key)
            for key in sorted(old_flat.keys() | new_flat.keys())
            if old_flat.get(key, _MISSING) != new_flat.get(key, _MISSING)
        ]
    old_flat = _flatten(_globals(old), skip=_NOT_CONFIGURATION)
    new_flat = _flatten(_globals(new), skip=_NOT_CONFIGURATION)
    global_settings = [
        (key, old_flat.get(key), new_flat.get(key))
        for key in sorted(old_flat.keys() | new_flat.keys())
        if old_flat.get(key, _MISSING) != new_flat.get(key, _MISSING)
    ]
    return ConfigDiff(
        tuple(enabled),
        tuple(disabled),
        tuple(reprioritised),
        tuple(detector_settings),
        tuple(global_settings),
    )


def pin_restart_settings(running: Config, new: Config) -> tuple[Config, tuple[str, ...]]:
    """``new`` with the settings that only apply after a restart kept as ``running`` has them,
    and one line per such setting that differs (empty when none does).

    These are the output ConfigMap's name and namespace (the store, its watch
    and the Lease are bound to them; moving would also orphan the old
    ConfigMap) and the namespaces the Service cache watches (its reflectors
    are per namespace). A narrower scope needs no restart: the detectors'
    own namespace filters still apply inside the wider one. And the ``api``
    section: the HTTP API's authenticator is built once, at start.
    """
    pending: list[str] = []
    output = new.output
    for key in ("name", "namespace"):
        was, wants = getattr(running.output, key), getattr(output, key)
        if was != wants:
            pending.append(f"output.{key}: running with {was!r}, the configuration says {wants!r}")
            output = attrs.evolve(output, **{key: was})
    old_scope, new_scope = namespace_scope(running), namespace_scope(new)
    if old_scope is not None and (new_scope is None or not set(new_scope) <= set(old_scope)):
        pending.append(
            "the namespaces the Service cache watches: running with "
            f"{', '.join(old_scope)}, the detectors' namespace filters now need "
            f"{'all namespaces' if new_scope is None else ', '.join(new_scope)}"
        )
    api = new.api
    if running.api != new.api:
        pending.append("api: the HTTP API's authentication is set up at start")
        api = running.api
    return attrs.evolve(new, output=output, api=api), tuple(pending)


_MISSING = object()


def _globals(config: Config) -> dict[str, Any]:
    document = unstructure(config)
    assert isinstance(document, dict)
    document.pop("detectors", None)
    return document


def _flatten(value: Any, *, skip: tuple[str, ...] = (), prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves."""
    if not isinstance(value, Mapping) or (prefix and not value):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if not prefix and key in skip:
            continue
        flat.update(_flatten(item, prefix=f"{prefix}.{key}" if prefix else str(key)))
    return flat
