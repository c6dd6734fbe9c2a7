"""Configuration reloads: read the source again, validate it fully, swap atomically.

:class:`Reloader` is what the file watch, the ConfigMap watch and
``POST /api/v1/config/reload`` call. One reload:

1. reads the configuration again from where the controller read it at start
   (the file, or the ``--config-configmap`` ConfigMap through the API);
2. validates it with the start-up code (:func:`dyntoolset.config.load_config_text`
   against the installed plugins; ``plugin.path`` detectors are loaded again);
3. keeps the settings that only apply after a restart as they are running and
   reports them (:func:`~dyntoolset.controller.config_diff.pin_restart_settings`);
4. compares the result with the running configuration: equal is ``unchanged``
   (no swap, no reconcile);
5. otherwise builds the new :class:`~dyntoolset.pipeline.Engine` and, when
   health settings changed, a new :class:`~dyntoolset.health.HealthChecker`
   that inherits the old one's state, then swaps them into the reconciler
   in one step (:meth:`~dyntoolset.controller.reconciler.Reconciler.apply_config`):
   a reconcile in flight finishes on what it started with, the next one
   (triggered at once) uses the new configuration.

Anything wrong is a :class:`~dyntoolset.errors.ConfigError` (every problem
as ``$.path: message``), logged and counted; the running configuration stays.
Reloads are serialised by a lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from dyntoolset.config import Config, load_config_text, read_config_text
from dyntoolset.controller.config_diff import diff_configs, pin_restart_settings
from dyntoolset.controller.reconciler import Reconciler
from dyntoolset.errors import ConfigError, DyntoolsetError, Problem
from dyntoolset.health import HealthChecker
from dyntoolset.kube.config_source import ConfigMapRef, read_config_configmap
from dyntoolset.metrics import Metrics
from dyntoolset.pipeline import Engine
from dyntoolset.plugins import PluginSet

__all__ = [
    "RELOAD_RESULTS",
    "ConfigReader",
    "LastReload",
    "ReloadReport",
    "Reloader",
    "configmap_reader",
    "file_reader",
]

log = logging.getLogger("dyntoolset.reload")

#: Reads the configuration: ``(text, source)``; raises :class:`ConfigError`.
ConfigReader = Callable[[], tuple[str, str]]

#: Builds the health checker for a configuration (raises ``ValueError`` for
#: an unusable ``ca_file`` or ``allowed_networks``).
HealthFactory = Callable[[Config], HealthChecker]

#: What a reload can end as: the ``result`` label of
#: ``dynamic_toolset_config_reloads_total`` and :attr:`LastReload.result`.
RELOAD_RESULTS = ("success", "unchanged", "failure")


@attrs.frozen
class ReloadReport:
    """What one reload did (the API answers with :meth:`as_document`)."""

    #: ``success`` (applied) or ``unchanged`` (the same effective configuration).
    status: str
    #: Detectors enabled / disabled after the reload.
    detectors_enabled: int
    detectors_disabled: int
    #: When the reload finished (UTC).
    reload_time: datetime
    #: The configuration generation after the reload (1 is the one started with).
    generation: int
    #: One human line per change: ``detector loki enabled``, ``detector grafana priority 50 -> 80``.
    changes: tuple[str, ...] = ()
    #: Settings that changed but apply only after a restart.
    restart_required: tuple[str, ...] = ()

    def as_document(self) -> dict[str, Any]:
        """The requirements' response shape (BR-TOOLSET-039), exactly these four keys."""
        return {
            "status": self.status,
            "detectors_enabled": self.detectors_enabled,
            "detectors_disabled": self.detectors_disabled,
            "reload_time": self.reload_time.astimezone(UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }


@attrs.frozen
class LastReload:
    """How the latest reload ended, whatever it was: what the statistics show of it."""

    #: When it finished (UTC).
    time: datetime
    #: One of :data:`RELOAD_RESULTS`.
    result: str
    #: Who asked: ``file``, ``configmap`` or ``api``.
    trigger: str
    #: For a failure, every problem as ``$.path: message`` (the running configuration stayed).
    problems: tuple[str, ...] = ()


def file_reader(path: str | None) -> ConfigReader:
    """Read the configuration file ``path`` (``None``: the defaults) as at start.

    A deleted or unreadable file is a :class:`ConfigError`, so the running
    configuration stays.
    """
    return lambda: read_config_text(path)


def configmap_reader(api_client: Any, ref: ConfigMapRef) -> ConfigReader:
    """Read the ``--config-configmap`` ConfigMap as at start, with two differences:

    a ConfigMap that no longer exists keeps the running configuration (at
    start it means the defaults; switching a running controller to every
    detector enabled because someone deleted a ConfigMap would be a surprise),
    and an API failure is a :class:`ConfigError` naming it.
    """

    def read() -> tuple[str, str]:
        try:
            text, source = read_config_configmap(api_client, ref)
        except ConfigError:
            raise
        except DyntoolsetError as exc:  # ConfigSourceError: the API refused or did not answer
            raise ConfigError([Problem("$", str(exc))], str(ref)) from exc
        if source == "defaults":
            raise ConfigError(
                [Problem("$", "the ConfigMap does not exist; keeping the running configuration")],
                str(ref),
            )
        return text, source

    return read


class Reloader:
    """Reloads the configuration of a running controller; see the module docstring.

    ``reconciler`` runs with the configuration loaded at start (generation
    1). ``read`` reads the source again (:func:`file_reader`,
    :func:`configmap_reader`); ``plugins`` gives the plugins a reload validates
    against (default: the running engine's installed plugins,
    :meth:`~dyntoolset.plugins.PluginSet.installed_only`, so ``plugin.path``
    detectors are loaded again); ``health`` builds a checker for a new configuration (``None``:
    the reconciler's checker is kept whatever changes, for embedders that
    run without health checks).
    """

    def __init__(
        self,
        reconciler: Reconciler,
        read: ConfigReader,
        *,
        metrics: Metrics,
        plugins: Callable[[], PluginSet] | None = None,
        health: HealthFactory | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._reconciler = reconciler
        self._read = read
        base = reconciler.engine.plugins
        self._plugins = plugins or base.installed_only
        self._health = health
        self._now = now
        self.metrics = metrics
        self._lock = threading.Lock()
        self._generation = 1
        self._last: LastReload | None = None
        metrics.config_generation.set(1)

    @property
    def generation(self) -> int:
        """The configuration generation: 1 at start, one more for each applied reload."""
        return self._generation

    @property
    def source(self) -> str:
        """Where the running configuration came from (a file path, a ConfigMap, ``defaults``)."""
        return self._reconciler.engine.config.source

    @property
    def last_reload(self) -> LastReload | None:
        """How the latest reload ended (``None`` before the first); a whole object, never
        changed in place, so any thread may read it."""
        return self._last

    def reload(self, trigger: str) -> ReloadReport:
        """Reload now; ``trigger`` says who asked (``file``, ``configmap``, ``api``).

        Thread-safe: concurrent calls run one after the other. Raises
        :class:`ConfigError` when the new configuration cannot be read or is
        invalid; the running one stays.
        """
        with self._lock:
            try:
                report, fields = self._reload()
            except ConfigError as exc:
                problems = tuple(str(p) for p in exc.problems)
                self._last = LastReload(self._now(), "failure", trigger, problems)
                self.metrics.config_reloads.labels(result="failure").inc()
                log.error(
                    "configuration reload (%s) failed; keeping generation %d: %s",
                    trigger,
                    self._generation,
                    exc,
                    extra={
                        "dyntoolset": {
                            "event": "config_reload_failed",
                            "trigger": trigger,
                            "source": exc.source,
                            "generation": self._generation,
                            "problems": list(problems),
                        }
                    },
                )
                raise
            self._last = LastReload(report.reload_time, report.status, trigger)
            self.metrics.config_reloads.labels(result=report.status).inc()
            self._log(trigger, report, fields)
            return report

    def try_reload(self, trigger: str) -> ReloadReport | None:
        """:meth:`reload`, with ``None`` for a failure (already logged and counted):
        what the watches call."""
        try:
            return self.reload(trigger)
        except ConfigError:
            return None

    def _reload(self) -> tuple[ReloadReport, dict[str, Any]]:
        """The reload and the structured fields of what changed (for the log)."""
        text, source = self._read()
        plugins = self._plugins()
        loaded = load_config_text(text, source, plugins)
        running_engine = self._reconciler.engine
        running = running_engine.config
        config, restart = pin_restart_settings(running, loaded)
        diff = diff_configs(running, config)
        if diff.empty:
            return self._report("unchanged", running, (), restart), {}
        health = self._reconciler.health
        if self._health is not None and diff.health_changed():
            try:
                checker = self._health(config)
            except ValueError as exc:  # documented: unusable ca_file or allowed_networks
                raise ConfigError([Problem("$.health_checks", str(exc))], source) from exc
            if isinstance(health, HealthChecker):
                checker.inherit(health)
            health = checker
        engine = Engine(config, plugins)
        self.metrics.plugin_load_errors.set(len(plugins.failures))
        self._reconciler.apply_config(
            engine, health=health, resync_interval=float(config.resync_interval)
        )
        self._generation += 1
        self.metrics.config_generation.set(self._generation)
        return self._report("success", config, diff.lines(), restart), diff.as_fields()

    def _report(
        self,
        status: str,
        config: Config,
        changes: tuple[str, ...],
        restart: tuple[str, ...],
    ) -> ReloadReport:
        enabled = sum(1 for d in config.detectors.values() if d.enabled)
        return ReloadReport(
            status=status,
            detectors_enabled=enabled,
            detectors_disabled=len(config.detectors) - enabled,
            reload_time=self._now(),
            generation=self._generation,
            changes=changes,
            restart_required=restart,
        )

    def _log(self, trigger: str, report: ReloadReport, changed: dict[str, Any]) -> None:
        fields = {
            "event": "config_reloaded",
            "trigger": trigger,
            "status": report.status,
            "generation": report.generation,
            "source": self.source,
            "changes": list(report.changes),
            "restart_required": list(report.restart_required),
            **changed,
        }
        log.info(
            "configuration reload (%s): %s, generation %d%s",
            trigger,
            "applied" if report.status == "success" else "no change",
            report.generation,
            f": {'; '.join(report.changes)}" if report.changes else "",
            extra={"dyntoolset": fields},
        )
        if report.restart_required:
            log.warning(
                "configuration reload (%s): these settings changed but apply only after a "
                "restart: %s",
                trigger,
                "; ".join(report.restart_required),
                extra={
                    "dyntoolset": {
                        "event": "config_restart_required",
                        "settings": list(report.restart_required),
                    }
                },
            )
