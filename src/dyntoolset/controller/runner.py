"""``dyntoolset run``: the live controller, composed.

:class:`Runner` wires the parts together: credentials
(:func:`~dyntoolset.kube.connect.connect`), the configuration (a file or
``--config-configmap``, validated by the same code), plugins and the
:class:`~dyntoolset.pipeline.Engine`, the
:class:`~dyntoolset.kube.services.ServiceCache`, the
:class:`~dyntoolset.kube.configmaps.ConfigMapStore` and
:class:`~dyntoolset.kube.configmaps.ConfigMapWatch`, the
:class:`~dyntoolset.health.HealthChecker` (through the API server's proxy
out of cluster), the :class:`~dyntoolset.kube.lease.LeaderElector`, the
:class:`~dyntoolset.controller.reconciler.Reconciler` and the
:class:`~dyntoolset.controller.probes.ProbeServer`, which also serves the HTTP
API (:class:`~dyntoolset.controller.api.Api`, authenticated as ``api.auth``
says; ``mode: none`` only on a loopback ``--listen``).

Two ways to run:

* **serve** (default): watch and reconcile until SIGTERM or SIGINT. Then
  ``/ready`` and every new API request turn 503, the in-flight reconcile
  finishes, leadership ends and the Lease is released, the HTTP requests in
  flight get their answers, the listeners close, and the process exits 0
  within ``shutdown_grace_period`` (or 1 when that ran out: a watchdog ends
  it). ``/health`` and ``/metrics`` answer until the listeners close.
* **once** (``--once``, and ``--dry-run``): wait for the cache to sync, run
  one reconcile and exit 0, or 1 when it failed. ``--dry-run`` writes
  nothing and prints the unified diff of the live ConfigMap against the
  generated one. A single run takes no part in leader election.
"""

from __future__ import annotations

import difflib
import logging
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any, NoReturn, TextIO

import attrs

from dyntoolset.config import ApiAuth, Config, read_config_text
from dyntoolset.configmap import for_display, to_yaml
from dyntoolset.controller.api import Api
from dyntoolset.controller.auth import Authenticator, KubernetesAuth, NoAuth, StaticTokens
from dyntoolset.controller.config_watch import (
    DEFAULT_POLL_INTERVAL,
    MISSING,
    ConfigMapSourceWatch,
    FileWatch,
    digest,
)
from dyntoolset.controller.logs import configure_logging
from dyntoolset.controller.probes import Check, ProbeServer, is_loopback
from dyntoolset.controller.reconciler import SUCCESSFUL_RESULTS, ReconcileOutcome, Reconciler
from dyntoolset.controller.reload import Reloader, configmap_reader, file_reader
from dyntoolset.controller.status import ControllerStatus, page_routes, status_routes
from dyntoolset.errors import ConfigError, Problem
from dyntoolset.health import HealthChecker
from dyntoolset.kube.config_source import parse_ref, read_config_configmap
from dyntoolset.kube.configmaps import ConfigMapStore, ConfigMapWatch
from dyntoolset.kube.connect import Connection, connect
from dyntoolset.kube.lease import LeaderElector, LeaseTimings
from dyntoolset.kube.proxy import health_transport
from dyntoolset.kube.reviews import AccessReviews
from dyntoolset.kube.services import ServiceCache, namespace_scope
from dyntoolset.metrics import DEFAULT_NAMESPACE_LABEL_LIMIT, Metrics
from dyntoolset.pipeline import Engine
from dyntoolset.plugins import load_plugins
from dyntoolset.version import __version__

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "RunOptions", "Runner", "configmap_diff"]

log = logging.getLogger("dyntoolset.run")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: /health fails when the main loop has not ticked for this long (it ticks every second).
_HEARTBEAT_LIMIT = 30.0


@attrs.frozen
class RunOptions:
    """Everything ``dyntoolset run`` is told on its command line."""

    config_file: str | None = None
    config_configmap: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    log_format: str = "text"
    log_level: int = logging.INFO
    once: bool = False
    dry_run: bool = False
    listen: tuple[str, int] = ("0.0.0.0", 8080)
    metrics_listen: tuple[str, int] | None = ("0.0.0.0", 9090)
    #: Distinct ``namespace`` label values of ``discovery_services_total`` (0: label off).
    metrics_namespace_limit: int = DEFAULT_NAMESPACE_LABEL_LIMIT
    #: ``None``: on in a cluster, off outside.
    leader_elect: bool | None = None
    lease_name: str = "dyntoolset"
    #: ``None``: the output ConfigMap's namespace.
    lease_namespace: str | None = None
    lease_timings: LeaseTimings = attrs.field(factory=LeaseTimings)
    shutdown_grace_period: float = 30.0
    #: How long ``--once`` waits for the first complete list of Services.
    sync_timeout: float = 60.0
    debounce: float = 0.2
    #: Reload when the configuration file or ConfigMap changes (serve mode only).
    config_watch: bool = True
    #: Seconds between two looks at the configuration file.
    config_poll_interval: float = DEFAULT_POLL_INTERVAL


class Runner:
    """One ``dyntoolset run``; :meth:`run` returns the exit code.

    ``inside`` overrides the detection of a Pod (tests); ``out`` receives the
    ``--dry-run`` diff. :meth:`request_stop` does what SIGTERM does.
    """

    def __init__(
        self,
        options: RunOptions,
        *,
        out: TextIO | None = None,
        inside: bool | None = None,
    ) -> None:
        self.options = options
        self.out = out or sys.stdout
        self._inside = inside
        self._stop = threading.Event()
        self._heartbeat = time.monotonic()
        self.metrics = Metrics(namespace_label_limit=options.metrics_namespace_limit)
        self.metrics.set_build_info(__version__, platform.python_version())
        #: The configuration reloader while serving (``None`` before, and with ``--once``).
        self.reloader: Reloader | None = None

    def request_stop(self) -> None:
        """Begin the orderly shutdown (what SIGTERM and SIGINT do)."""
        self._stop.set()

    # -- composition --------------------------------------------------------------

    def run(self) -> int:
        """Run as the options say; see the module docstring.

        Raises :class:`~dyntoolset.errors.ConfigError` (every problem) for an
        invalid configuration and :class:`~dyntoolset.kube.connect.CredentialsError`
        when no credentials load; the CLI turns both into exit 2.
        """
        restore_logging = configure_logging(self.options.log_format, self.options.log_level)
        try:
            return self._run()
        finally:
            restore_logging()

    def _run(self) -> int:
        o = self.options
        connection = connect(o.kubeconfig, o.context, inside=self._inside)
        log.info(
            "connected to %s (%s)",
            connection.host,
            "in-cluster service account" if connection.in_cluster else "kubeconfig",
            extra={"dyntoolset": {"event": "connected", "host": connection.host}},
        )
        try:
            engine, baseline = self._engine(connection)
            if not (o.once or o.dry_run):
                check_api_listen(engine.config, o.listen)
            try:
                health = self._health_checker(connection, engine.config)
            except ValueError as exc:  # documented: unusable ca_file or allowed_networks
                print(f"dyntoolset: cannot run health checks: {exc}", file=sys.stderr)
                return EXIT_USAGE
            output = engine.config.output
            scope = namespace_scope(engine.config)
            cache = ServiceCache(connection.api_client, namespaces=scope)
            self.metrics.cache_synced.set_function(lambda: 1.0 if cache.synced else 0.0)
            self.metrics.cache_services.set_function(lambda: float(cache.size))
            store = ConfigMapStore(connection.api_client, output.namespace, output.name)
            try:
                if o.once or o.dry_run:
                    return self._once(engine, cache, store, health)
                return self._serve(connection, engine, cache, store, health, baseline)
            finally:
                store.close()
        finally:
            connection.api_client.close()

    def _engine(self, connection: Connection) -> tuple[Engine, str]:
        """The engine of the configuration, and the digest of the text it was read from
        (the baseline of the configuration watch)."""
        o = self.options
        plugins = load_plugins()
        if o.config_configmap is not None:
            text, source = read_config_configmap(
                connection.api_client, parse_ref(o.config_configmap)
            )
        else:
            text, source = read_config_text(o.config_file)
        engine = Engine.from_text(text, source, plugins)
        # Path plugins named by the configuration add theirs while it loads.
        self.metrics.plugin_load_errors.set(len(plugins.failures))
        self.metrics.set_plugin_distributions(plugins.distributions)
        log.info(
            "configuration from %s: detectors %s; output ConfigMap %s/%s",
            engine.config.source,
            ", ".join(d.name for d in engine.detectors) or "none",
            engine.config.output.namespace,
            engine.config.output.name,
            extra={"dyntoolset": {"event": "configured", "source": engine.config.source}},
        )
        # A ConfigMap that did not exist (the defaults) is absent to its watch too.
        return engine, MISSING if source == "defaults" else digest(text)

    def _health_checker(self, connection: Connection, config: Config) -> HealthChecker:
        """The health checker for ``config`` (at start and for each reload that changes
        health settings); ``ValueError`` for an unusable ``ca_file`` or ``allowed_networks``."""
        transport = health_transport(
            config.health_checks, connection.api_client, inside=connection.in_cluster
        )
        return HealthChecker.from_config(config, transport=transport, metrics=self.metrics)

    def _reconciler(
        self,
        engine: Engine,
        cache: ServiceCache,
        store: ConfigMapStore,
        health: HealthChecker,
        elector: LeaderElector | None,
    ) -> Reconciler:
        return Reconciler(
            engine,
            cache,
            store,
            health=health,
            metrics=self.metrics,
            is_leader=elector.is_leader if elector is not None else _always,
            debounce=self.options.debounce,
            resync_interval=float(engine.config.resync_interval),
            dry_run=self.options.dry_run,
        )

    # -- --once and --dry-run --------------------------------------------------------

    def _once(
        self, engine: Engine, cache: ServiceCache, store: ConfigMapStore, health: HealthChecker
    ) -> int:
        o = self.options
        reconciler = self._reconciler(engine, cache, store, health, None)
        cache.start()
        try:
            if not cache.wait_synced(o.sync_timeout):
                log.error(
                    "the Service cache did not sync within %.0f s; nothing was written",
                    o.sync_timeout,
                    extra={"dyntoolset": {"event": "sync_timeout"}},
                )
                return EXIT_FAILED
            self._log_synced(cache)
            outcome = reconciler.reconcile_now()
        finally:
            cache.stop()
        if o.dry_run:
            self._print_diff(outcome, engine)
        log.info(
            "single run: reconcile %s%s",
            outcome.result,
            "" if outcome.result in SUCCESSFUL_RESULTS else f" ({outcome.error_type})",
            extra={"dyntoolset": {"event": "done", "result": outcome.result}},
        )
        if outcome.result in SUCCESSFUL_RESULTS:
            return EXIT_OK
        print(f"dyntoolset: reconcile failed: {outcome.error}", file=sys.stderr)
        return EXIT_FAILED

    def _print_diff(self, outcome: ReconcileOutcome, engine: Engine) -> None:
        if outcome.desired is None:
            return
        output = engine.config.output
        diff = configmap_diff(
            outcome.previous, outcome.desired, f"{output.namespace}/{output.name}"
        )
        if diff:
            self.out.write(diff)
        else:
            print(
                f"dry run: ConfigMap {output.namespace}/{output.name} is up to date",
                file=sys.stderr,
            )

    # -- serving ----------------------------------------------------------------------

    def _serve(
        self,
        connection: Connection,
        engine: Engine,
        cache: ServiceCache,
        store: ConfigMapStore,
        health: HealthChecker,
        baseline: str,
    ) -> int:
        o = self.options
        output = engine.config.output
        elect = o.leader_elect if o.leader_elect is not None else connection.in_cluster
        elector: LeaderElector | None = None
        reconciler: Reconciler | None = None

        def started_leading() -> None:
            self.metrics.is_leader.set(1)
            # A warm cache: the new leader reconciles at once, no cold start.
            if reconciler is not None:
                reconciler.trigger("leader")

        def stopped_leading() -> None:
            self.metrics.is_leader.set(0)

        if elect:
            elector = LeaderElector(
                connection.api_client,
                name=o.lease_name,
                namespace=o.lease_namespace or output.namespace,
                timings=o.lease_timings,
                on_started_leading=started_leading,
                on_stopped_leading=stopped_leading,
            )
        else:
            self.metrics.is_leader.set(1)
        reconciler = self._reconciler(engine, cache, store, health, elector)
        watch = ConfigMapWatch(
            connection.api_client, output.namespace, output.name, reconciler.on_configmap_event
        )
        reloader = self.reloader = Reloader(
            reconciler,
            configmap_reader(connection.api_client, parse_ref(o.config_configmap))
            if o.config_configmap is not None
            else file_reader(o.config_file),
            metrics=self.metrics,
            health=lambda config: self._health_checker(connection, config),
        )
        config_watch = self._config_watch(connection, reloader, baseline)
        reviews = AccessReviews(connection.api_client)
        try:
            return self._serve_with_api(
                engine, cache, reconciler, watch, elector, reviews, reloader, config_watch
            )
        finally:
            reviews.close()

    def _serve_with_api(
        self,
        engine: Engine,
        cache: ServiceCache,
        reconciler: Reconciler,
        watch: ConfigMapWatch,
        elector: LeaderElector | None,
        reviews: AccessReviews,
        reloader: Reloader,
        config_watch: FileWatch | ConfigMapSourceWatch | None,
    ) -> int:
        o = self.options
        status = ControllerStatus(
            reconciler,
            cache,
            metrics=self.metrics,
            is_leader=elector.is_leader if elector is not None else _always,
            configuration=lambda: (reloader.generation, reloader.source),
            last_reload=lambda: reloader.last_reload,
        )
        # The api section is read here, once: a reload reports a change to it
        # as needing a restart (controller.config_diff).
        api = Api(
            authenticator(engine.config.api.auth, reviews),
            self.metrics,
            reloader=reloader,
            read_routes=status_routes(status),
            open_routes=page_routes(),
        )
        probes = ProbeServer(
            self.metrics,
            listen=o.listen,
            metrics_listen=o.metrics_listen,
            liveness=self._liveness,
            readiness=lambda: self._readiness(cache, reconciler),
            api=api,
        )
        try:
            probes.start()
        except OSError as exc:
            print(f"dyntoolset: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        restore = self._install_signal_handlers()
        cache.on_change(lambda reason: self._log_synced(cache) if reason == "synced" else None)
        log.info(
            "starting: leader election %s",
            f"on (Lease {elector.namespace}/{elector.name}, identity {elector.identity})"
            if elector
            else "off",
            extra={
                "dyntoolset": {
                    "event": "starting",
                    "leader_election": elector is not None,
                    "identity": elector.identity if elector else None,
                }
            },
        )
        try:
            cache.start()
            watch.start()
            if elector is not None:
                elector.start()
            reconciler.start()
            if config_watch is not None:
                config_watch.start()
            while not self._stop.wait(1.0):
                self._heartbeat = time.monotonic()
            return self._shutdown(probes, reconciler, elector, watch, cache, config_watch)
        finally:
            restore()
            probes.stop()

    def _shutdown(
        self,
        probes: ProbeServer,
        reconciler: Reconciler,
        elector: LeaderElector | None,
        watch: ConfigMapWatch,
        cache: ServiceCache,
        config_watch: FileWatch | ConfigMapSourceWatch | None = None,
    ) -> int:
        grace = self.options.shutdown_grace_period
        deadline = time.monotonic() + grace

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        log.info(
            "shutting down (grace period %.0f s): not ready, refusing new API requests, "
            "finishing the reconcile in flight",
            grace,
            extra={"dyntoolset": {"event": "shutdown"}},
        )
        probes.shutting_down()
        # The kubelet kills the process when its own grace period ends; ending
        # here first says why (and leaves the Lease to expire, which is safe).
        watchdog = threading.Timer(grace, _grace_exceeded, args=(grace,))
        watchdog.daemon = True
        watchdog.start()
        if config_watch is not None:
            # First: no configuration swap while the last reconcile finishes.
            config_watch.stop(timeout=left())
        reconciler.stop(timeout=left())
        if time.monotonic() >= deadline:
            _grace_exceeded(grace)  # the reconcile is still running: do not race the watchdog
        if elector is not None:
            # Leadership ends before the release is written: if the reconcile
            # above is still running, its pre-write leadership check fails.
            elector.stop(timeout=left())
        watch.stop(timeout=left())
        cache.stop(timeout=left())
        # Last: HTTP requests in flight (a reload, a statistics read) get their
        # answers, and /health and /metrics answer until the listeners close.
        probes.stop(timeout=left())
        watchdog.cancel()
        log.info("stopped", extra={"dyntoolset": {"event": "stopped"}})
        return EXIT_OK

    def _install_signal_handlers(self) -> Any:
        """SIGTERM/SIGINT begin the shutdown; returns a function restoring the old handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # embedded in a thread: the embedder calls request_stop()

        def handle(signum: int, frame: FrameType | None) -> None:
            if self._stop.is_set():
                log.warning("second signal: exiting without waiting")
                raise SystemExit(EXIT_FAILED)
            log.info("received %s", signal.Signals(signum).name)
            self._stop.set()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

        return restore

    # -- probes and logs -------------------------------------------------------------

    def _liveness(self) -> Sequence[Check]:
        silent = time.monotonic() - self._heartbeat
        ok = silent < _HEARTBEAT_LIMIT
        return [Check("main_loop", ok, "" if ok else f"no heartbeat for {silent:.0f} s")]

    def _config_watch(
        self, connection: Connection, reloader: Reloader, baseline: str
    ) -> FileWatch | ConfigMapSourceWatch | None:
        """The watch that reloads on a change of the configuration's source (``None``: off,
        or no source to watch)."""
        o = self.options
        if not o.config_watch:
            log.info(
                "configuration watch off; reload with POST /api/v1/config/reload",
                extra={"dyntoolset": {"event": "config_watch", "watching": None}},
            )
            return None
        if o.config_configmap is not None:
            ref = parse_ref(o.config_configmap)
            what: str = str(ref)
            config_watch: FileWatch | ConfigMapSourceWatch = ConfigMapSourceWatch(
                connection.api_client,
                ref,
                lambda: reloader.try_reload("configmap"),
                baseline=baseline,
            )
        elif o.config_file is not None:
            what = o.config_file
            config_watch = FileWatch(
                o.config_file,
                lambda: reloader.try_reload("file"),
                baseline=baseline,
                interval=o.config_poll_interval,
            )
        else:
            return None
        log.info(
            "watching the configuration: %s",
            what,
            extra={"dyntoolset": {"event": "config_watch", "watching": what}},
        )
        return config_watch

    def _readiness(self, cache: ServiceCache, reconciler: Reconciler) -> Sequence[Check]:
        synced = cache.synced
        return [
            Check(
                "cache_synced",
                synced,
                f"{cache.size} Services cached"
                if synced
                else "waiting for a complete list of Services",
            ),
            # A failed reload keeps the running configuration: still ready.
            Check("configuration", True, f"valid, from {reconciler.engine.config.source}"),
        ]

    def _log_synced(self, cache: ServiceCache) -> None:
        log.info(
            "Service cache synced: %d Services",
            cache.size,
            extra={"dyntoolset": {"event": "synced", "services": cache.size}},
        )


def _always() -> bool:
    return True


def check_api_listen(config: Config, listen: tuple[str, int]) -> None:
    """``api.auth.mode: none`` only on a loopback ``--listen``; else :class:`ConfigError`."""
    if config.api.auth.mode == "none" and not is_loopback(listen[0]):
        raise ConfigError(
            [
                Problem(
                    "$.api.auth.mode",
                    f"none (no authentication) is accepted only when --listen is a loopback "
                    f"address, not {listen[0]}:{listen[1]}; use static or kubernetes, or "
                    f"--listen 127.0.0.1:{listen[1]}",
                )
            ],
            config.source,
        )


def authenticator(auth: ApiAuth, reviews: AccessReviews) -> Authenticator:
    """The authenticator of ``api.auth`` (``reviews`` asks the API server in ``kubernetes`` mode)."""
    if auth.mode == "none":
        return NoAuth()
    if auth.mode == "static":
        assert auth.token_file is not None  # the configuration requires it
        return StaticTokens(auth.token_file)
    return KubernetesAuth(reviews, audiences=auth.audiences, cache_ttl=float(auth.cache_ttl))


def _grace_exceeded(grace: float) -> NoReturn:
    log.error(
        "shutdown took longer than the grace period (%.0f s); exiting now",
        grace,
        extra={"dyntoolset": {"event": "grace_exceeded"}},
    )
    logging.shutdown()
    os._exit(EXIT_FAILED)


def configmap_diff(
    previous: Mapping[str, Any] | None, desired: Mapping[str, Any], name: str
) -> str:
    """The unified diff from the live ConfigMap (``None``: absent) to the generated one.

    Both as ``kubectl apply``-ready YAML (server-set metadata left out) with
    keys sorted, so the order the API server returns fields in is no
    difference; an empty string when they are equal.
    """
    before = _canonical_yaml(previous) if previous else []
    after = _canonical_yaml(desired)
    return "".join(
        difflib.unified_diff(
            before,
            after,
            fromfile=f"live/{name}" if previous else "/dev/null",
            tofile=f"generated/{name}",
        )
    )


def _canonical_yaml(configmap: Mapping[str, Any]) -> list[str]:
    return to_yaml(_sorted(for_display(configmap))).splitlines(keepends=True)


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
