"""The ``dyntoolset`` command line.

Exit codes: 0 success; 1 the command ran but some input was bad (for example
a malformed manifest, reported on stderr, or the Service ``explain`` asks
about is not in the manifests); 2 usage or configuration errors;
141 the reader of standard output went away (``| head``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import yaml

from dyntoolset.config import OutputSettings, load_config
from dyntoolset.configmap import configmap_problems, for_display, to_yaml
from dyntoolset.convert import unstructure
from dyntoolset.dashboard import dashboard_text
from dyntoolset.discovery import Verdict
from dyntoolset.errors import ConfigError, DyntoolsetError, ManifestError
from dyntoolset.gcpause import cycle_collector_paused
from dyntoolset.manifests import ManifestObject, ManifestReport, read_manifests
from dyntoolset.metrics import DEFAULT_NAMESPACE_LABEL_LIMIT
from dyntoolset.model import Service
from dyntoolset.pipeline import Cycle, Engine
from dyntoolset.plugins import load_plugins
from dyntoolset.snapshot import SnapshotError, service_from_object
from dyntoolset.version import __version__

log = logging.getLogger("dyntoolset")

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2
#: What a shell reports for a process ended by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dyntoolset",
        description="Discover observability backends among Kubernetes Services and "
        "generate toolset configuration for AI troubleshooting agents.",
    )
    parser.add_argument("--version", action="version", version=f"dyntoolset {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    disc = sub.add_parser(
        "discover",
        help="discover toolsets from Service manifests (no cluster needed)",
        description="Read Service manifests, run the detectors and print the result. "
        "A summary of what was found and skipped goes to stderr.",
    )
    disc.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        required=True,
        metavar="PATH",
        help="manifest file, directory or - for stdin (repeatable); YAML, JSON or "
        "a List as printed by 'kubectl get svc -A -o json'",
    )
    disc.add_argument("-c", "--config", metavar="FILE", help="detector configuration file")
    disc.add_argument(
        "-o",
        "--output",
        default="configmap",
        metavar="FORMAT",
        help="configmap (default: the whole ConfigMap, ready for kubectl apply) or an "
        "output format such as holmesgpt or kubernaut",
    )
    disc.add_argument(
        "--existing",
        metavar="FILE",
        help="current ConfigMap (YAML/JSON) to merge into: keeps overrides.yaml and "
        "foreign keys, reports drift",
    )
    disc.add_argument(
        "--allow-empty",
        action="store_true",
        help="print the output even when no Service was read (by default that is refused: "
        "applied, an empty ConfigMap would remove every toolset)",
    )
    disc.add_argument(
        "--health-check",
        action="store_true",
        help="check that discovered services answer (direct mode) before including them",
    )

    expl = sub.add_parser(
        "explain",
        help="why one Service is or is not discovered: each detector's verdict",
        description="Read Service manifests and print each enabled detector's verdict on "
        "one Service, in priority order: which detector takes it (endpoint, port, health "
        "path, toolsets), which were not consulted, and why each other one did not match.",
    )
    expl.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        required=True,
        metavar="PATH",
        help="manifest file, directory or - for stdin (repeatable), as for discover",
    )
    expl.add_argument("-c", "--config", metavar="FILE", help="detector configuration file")
    expl.add_argument("--json", action="store_true", help="print JSON instead of text")
    expl.add_argument("service", type=_service_key, metavar="NAMESPACE/NAME")

    plug = sub.add_parser("plugins", help="list installed detectors and renderers")
    plug.add_argument("-c", "--config", metavar="FILE", help="configuration (for enabled/priority)")
    plug.add_argument("--json", action="store_true", help="print JSON instead of a table")

    _run_parser(sub)

    sub.add_parser(
        "dashboard",
        help="print the Grafana dashboard JSON (import it: docs/observability.md)",
        description="Print dyntoolset's Grafana dashboard, ready for Dashboards > Import. "
        "It asks for its Prometheus data source through the ${datasource} variable.",
    )

    cfg = sub.add_parser("config", help="validate or show the configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    validate = cfg_sub.add_parser("validate", help="check a configuration file; exit 2 if invalid")
    validate.add_argument("file")
    show = cfg_sub.add_parser("show", help="print the effective configuration, defaults applied")
    show.add_argument("file", nargs="?")
    return parser


def _service_key(value: str) -> str:
    namespace, slash, name = value.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected NAMESPACE/NAME, for example monitoring/prometheus"
        )
    return value


def _listen(value: str) -> tuple[str, int]:
    from dyntoolset.controller.probes import parse_listen

    try:
        return parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, not {number}")
    return number


def _config_configmap(value: str) -> str:
    from dyntoolset.kube.config_source import parse_ref

    try:
        parse_ref(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r}: expected a number of seconds above 0")
    return seconds


def _run_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run the controller: watch Services, keep the toolset ConfigMap current",
        description="Watch the cluster's Services and keep the output ConfigMap current. "
        "Credentials: the in-cluster service account in a Pod, else the kubeconfig. "
        "See docs/running-the-controller.md.",
    )
    source = run.add_mutually_exclusive_group()
    source.add_argument("-c", "--config", metavar="FILE", help="configuration file")
    source.add_argument(
        "--config-configmap",
        metavar="NAMESPACE/NAME[:KEY]",
        type=_config_configmap,
        help="read the configuration from this ConfigMap (key default config.yaml; "
        "a missing ConfigMap means the defaults at start), watched for changes",
    )
    run.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig (default: $KUBECONFIG, "
        "~/.kube/config; implies running outside the cluster)",
    )
    run.add_argument("--context", help="kubeconfig context (default: the current one)")
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as text (default) or JSON objects",
    )
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--once",
        action="store_true",
        help="reconcile once after the cache synced, then exit 0 (or 1 on failure)",
    )
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="reconcile once without writing; print the diff of the live ConfigMap "
        "against the generated one",
    )
    run.add_argument(
        "--listen",
        type=_listen,
        default=("0.0.0.0", 8080),
        metavar="HOST:PORT",
        help="address of /health and /ready (default 0.0.0.0:8080)",
    )
    run.add_argument(
        "--metrics-listen",
        type=_listen,
        default=("0.0.0.0", 9090),
        metavar="HOST:PORT",
        help="address of /metrics (default 0.0.0.0:9090)",
    )
    run.add_argument(
        "--metrics-namespace-limit",
        type=_non_negative_int,
        default=DEFAULT_NAMESPACE_LABEL_LIMIT,
        metavar="N",
        help="distinct namespace label values of dynamic_toolset_discovery_services_total; "
        f"later namespaces count as 'other', 0 turns the label off "
        f"(default {DEFAULT_NAMESPACE_LABEL_LIMIT})",
    )
    run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compete for a Lease; only the leader writes (default: on in a cluster, off outside)",
    )
    run.add_argument("--lease-name", default="dyntoolset", help="Lease name (default dyntoolset)")
    run.add_argument(
        "--lease-namespace",
        metavar="NAMESPACE",
        help="Lease namespace (default: the output ConfigMap's)",
    )
    run.add_argument(
        "--leader-elect-lease-duration",
        type=_seconds,
        default=15.0,
        metavar="SECONDS",
        help="how long followers wait for a silent leader (15)",
    )
    run.add_argument(
        "--leader-elect-renew-deadline",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="how long a leader keeps trying to renew (10)",
    )
    run.add_argument(
        "--leader-elect-retry-period",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="time between attempts (2)",
    )
    run.add_argument(
        "--shutdown-grace-period",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, exit within this long (default 30)",
    )
    run.add_argument(
        "--config-watch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reload when the configuration file or ConfigMap changes (default on; "
        "POST /api/v1/config/reload works either way)",
    )
    run.add_argument(
        "--config-poll-interval",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="how often the configuration file is looked at (2)",
    )
    run.add_argument(
        "--sync-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="with --once/--dry-run: how long to wait for the Service list (60)",
    )


def _run(args: argparse.Namespace) -> int:
    from dyntoolset.controller.runner import Runner, RunOptions
    from dyntoolset.kube.lease import LeaseTimings

    try:
        timings = LeaseTimings(
            args.leader_elect_lease_duration,
            args.leader_elect_renew_deadline,
            args.leader_elect_retry_period,
        )
    except ValueError as exc:
        print(f"dyntoolset: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = RunOptions(
        config_file=args.config,
        config_configmap=args.config_configmap,
        kubeconfig=args.kubeconfig,
        context=args.context,
        log_format=args.log_format,
        log_level=logging.DEBUG if args.verbose else logging.INFO,
        once=args.once,
        dry_run=args.dry_run,
        listen=args.listen,
        metrics_listen=args.metrics_listen,
        metrics_namespace_limit=args.metrics_namespace_limit,
        leader_elect=args.leader_elect,
        lease_name=args.lease_name,
        lease_namespace=args.lease_namespace,
        lease_timings=timings,
        shutdown_grace_period=args.shutdown_grace_period,
        sync_timeout=args.sync_timeout,
        config_watch=args.config_watch,
        config_poll_interval=args.config_poll_interval,
    )
    from dyntoolset.kube.connect import CredentialsError

    try:
        return Runner(options).run()
    except CredentialsError as exc:
        print(f"dyntoolset: {exc}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dyntoolset`` console script."""
    args = _parser().parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        if args.command == "discover":
            # Reading a cluster dump makes millions of objects that all stay
            # reachable until the command ends: full collections walk them and
            # free nothing (a third of the CPU on 50,000 Services, issue 15).
            with cycle_collector_paused():
                return _discover(args, sys.stdout, sys.stderr)
        if args.command == "explain":
            return _explain(args, sys.stdout, sys.stderr)
        if args.command == "run":
            return _run(args)
        if args.command == "plugins":
            return _plugins(args, sys.stdout)
        if args.command == "dashboard":
            sys.stdout.write(dashboard_text())
            return EXIT_OK
        if args.config_command == "validate":
            return _validate(args.file, sys.stdout, sys.stderr)
        return _show(args.file, sys.stdout)
    except ConfigError as exc:
        print(f"dyntoolset: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DyntoolsetError as exc:
        print(f"dyntoolset: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        # The reader went away (``dyntoolset plugins --json | head``): stop
        # quietly, as a shell tool does on SIGPIPE. Output still buffered
        # would raise again at exit, so point stdout at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


# -- discover -----------------------------------------------------------------


def _services(report: ManifestReport, err: TextIO) -> tuple[list[Service], int]:
    services, others = [], 0
    # Where each Service was read first, and every place of the repeated ones
    # (a list and a text per Service cost 0.3 s for 50,000 of them, issue 15).
    first: dict[tuple[str, str], ManifestObject] = {}
    repeated: dict[tuple[str, str], list[ManifestObject]] = {}
    for item in report.objects:
        obj = item.obj
        if obj.get("kind") != "Service" or str(obj.get("apiVersion", "v1")) != "v1":
            others += 1
            continue
        try:
            service = service_from_object(obj)
        except SnapshotError as exc:
            report.errors.append(
                ManifestError(item.source, f"invalid Service: {exc}", item.position)
            )
            continue
        services.append(service)
        key = (service.namespace, service.name)
        earlier = first.setdefault(key, item)
        if earlier is not item:
            repeated.setdefault(key, [earlier]).append(item)
    for key in first if repeated else ():  # in the order they were first read
        places = repeated.get(key)
        if places:
            # Discovery keeps one Service per namespace/name, the last one read.
            where = ", ".join(f"{place.source}:{place.position}" for place in places)
            print(
                f"warning: Service {key[0]}/{key[1]} is read {len(places)} times ({where}); "
                f"only the last one is used",
                file=err,
            )
    return services, others


def _refusal(read_errors: Sequence[ManifestError], services: int, allow_empty: bool) -> str:
    """Why ``discover`` must print nothing, or ``""``.

    Its output is made for ``kubectl apply``: a ConfigMap built from input
    that was not read completely, or from no Service at all, would remove
    toolsets that exist. Invalid Service objects do not count as unread input
    (the API server would refuse them, so no toolset of theirs can exist).
    """
    if read_errors:
        return (
            f"nothing printed: {len(read_errors)} input error(s) above; a ConfigMap without "
            f"the Services that could not be read would remove their toolsets when applied"
        )
    if services == 0 and not allow_empty:
        return (
            "nothing printed: no Services were read; applied, a ConfigMap without toolsets "
            "would remove every toolset (pass --allow-empty if that is what you want)"
        )
    return ""


def _load_existing(path: str, output: OutputSettings) -> dict[str, Any]:
    report = read_manifests([path])
    if report.errors:
        raise report.errors[0]
    maps = [o for o in report.objects if o.kind == "ConfigMap"]
    if len(maps) != 1:
        raise ManifestError(path, f"expected exactly one ConfigMap, found {len(maps)}")
    problems = configmap_problems(maps[0].obj)
    if problems:
        raise ManifestError(
            maps[0].source, f"invalid ConfigMap: {'; '.join(problems)}", maps[0].position
        )
    # A file without name or namespace (hand-written) is taken as the output.
    meta = maps[0].obj.get("metadata") or {}
    name = meta.get("name") or output.name
    namespace = meta.get("namespace") or output.namespace
    if (name, namespace) != (output.name, output.namespace):
        raise ManifestError(
            maps[0].source,
            f"ConfigMap {namespace}/{name} is not the output ConfigMap "
            f"{output.namespace}/{output.name} (output.name and output.namespace in the "
            f"configuration)",
            maps[0].position,
        )
    return maps[0].obj


def _discover(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    engine = Engine.load(args.config)
    to_configmap = args.output == "configmap"
    if not to_configmap and args.output not in engine.renderers:
        known = ", ".join(["configmap", *engine.renderers])
        print(f"dyntoolset: unknown output {args.output!r}; choose one of: {known}", file=err)
        return EXIT_USAGE
    existing = _load_existing(args.existing, engine.config.output) if args.existing else None
    report = read_manifests(args.paths)
    read_errors = list(report.errors)
    services, others = _services(report, err)
    refusal = _refusal(read_errors, len(services), args.allow_empty)
    if refusal:
        for error in report.errors:
            print(f"error: {error}", file=err)
        print(f"dyntoolset: {refusal}", file=err)
        return EXIT_INPUT
    checker = None
    if args.health_check:
        from dyntoolset.health import guard, offline_checker

        # The resolver is looked up now (not bound at import) so it can be
        # swapped at its boundary, as the tests do.
        try:
            checker = offline_checker(engine.config, resolver=guard.system_resolver)
        except ValueError as exc:  # documented: unusable ca_file or allowed_networks
            print(f"dyntoolset: cannot run health checks: {exc}", file=err)
            return EXIT_USAGE
    cycle = engine.cycle(
        services,
        existing=existing,
        health=checker,
        formats=None if to_configmap else [args.output],
        configmap=to_configmap,
    )
    if cycle.merge is not None:
        out.write(to_yaml(for_display(cycle.merge.configmap)))
    else:
        out.write(cycle.documents[engine.renderers[args.output].data_key])
    for problem in cycle.problems:
        print(f"warning: {problem}", file=err)
    if cycle.merge is not None and cycle.merge.drifted:
        print(
            f"drift: restored generated keys edited or deleted by someone else: "
            f"{', '.join(cycle.merge.drifted)} (put manual changes in overrides.yaml)",
            file=err,
        )
    _summary(engine, report, len(services), others, cycle, err)
    return EXIT_INPUT if report.errors else EXIT_OK


def _summary(
    engine: Engine,
    report: ManifestReport,
    service_count: int,
    others: int,
    cycle: Cycle,
    err: TextIO,
) -> None:
    result = cycle.discovery
    print(f"read {service_count} Services ({others} other objects ignored)", file=err)
    for error in report.errors:
        print(f"error: {error}", file=err)
    enabled = ", ".join(f"{a.name} (priority {a.config.priority})" for a in engine.detectors)
    print(f"detectors: {enabled or 'none'}", file=err)
    print(f"found {len(cycle.checked)} services:", file=err)
    for found in cycle.checked:
        health = ""
        if found.health:
            detail = f": {found.health.detail}" if found.health.detail else ""
            health = f"  [health: {found.health.reason}{detail}]"
        print(f"  {found.key:50} {found.type:14} {found.endpoint}{health}", file=err)
    if len(cycle.emitted) != len(cycle.checked):
        print(f"{len(cycle.checked) - len(cycle.emitted)} left out as unhealthy", file=err)
    counts = ", ".join(f"{reason} {n}" for reason, n in result.skip_counts.items())
    print(f"skipped {sum(result.skip_counts.values())}: {counts}", file=err)
    for skip in result.skips:
        print(f"  {skip.service}: {skip.reason} ({skip.detector}): {skip.detail}", file=err)
    for failure in result.failures:
        print(
            f"  detector {failure.detector} failed on {failure.service}: {failure.error}", file=err
        )


# -- explain ------------------------------------------------------------------


def _explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    engine = Engine.load(args.config)
    report = read_manifests(args.paths)
    services, _ = _services(report, err)
    for error in report.errors:
        print(f"error: {error}", file=err)
    # As in discover, the last Service read under a namespace/name is the one used.
    service = next((s for s in reversed(services) if s.key == args.service), None)
    if service is None:
        print(
            f"dyntoolset: Service {args.service} not found in {', '.join(args.paths)} "
            f"({len(services)} Services read)",
            file=err,
        )
        return EXIT_INPUT
    verdicts = engine.explain(service)
    if args.json:
        json.dump(
            {"service": service.key, "verdicts": [v.to_dict() for v in verdicts]}, out, indent=2
        )
        out.write("\n")
    else:
        _print_verdicts(service.key, verdicts, out)
    return EXIT_INPUT if report.errors else EXIT_OK


def _print_verdicts(key: str, verdicts: Sequence[Verdict], out: TextIO) -> None:
    taken = next((v.detector for v in verdicts if v.verdict == "match"), None)
    summary = f"discovered by {taken}" if taken else "not discovered"
    out.write(f"Service {key}: {summary}\n")
    if not verdicts:
        out.write("  no detector is enabled\n")
    for v in verdicts:
        label = v.verdict.replace("_", " ")
        head = f"  {v.detector} (priority {v.priority}): {label}"
        if v.detail:
            head += f": {v.detail}"
        if v.verdict in ("namespace_filtered", "annotation_filtered") and v.would_match:
            head += f" (without this filter {v.detector} would match)"
        out.write(head + "\n")
        found = v.discovered
        if found is not None:
            port = "-" if found.port is None else str(found.port.port)
            if found.port is not None and found.port.name:
                port += f" ({found.port.name})"
            kinds = ", ".join(t.kind for t in found.toolsets) or "none"
            out.write(f"      type:        {found.type}\n")
            out.write(f"      endpoint:    {found.endpoint}\n")
            out.write(f"      port:        {port}\n")
            out.write(f"      health path: {found.health_path} ({found.health_check} check)\n")
            out.write(f"      toolsets:    {kinds}\n")


# -- plugins ------------------------------------------------------------------


def _plugins(args: argparse.Namespace, out: TextIO) -> int:
    plugins = load_plugins()
    config = load_config(args.config, plugins)
    rows = []
    for kind, table in (("detector", plugins.detectors), ("renderer", plugins.renderers)):
        for name, info in sorted(table.items()):
            row: dict[str, Any] = {
                "kind": kind,
                "name": name,
                "version": info.version,
                "api_version": info.api_version or None,
                "distribution": info.origin,
                "description": info.description,
            }
            if kind == "detector":
                dc = config.detectors[name]
                row.update(enabled=dc.enabled, priority=dc.priority)
            else:
                row.update(enabled=name in (config.output.formats or ()), priority=None)
            rows.append(row)
    failures = [
        {"plugin": f.plugin, "distribution": f.distribution, "reason": f.reason}
        for f in plugins.failures
    ]
    if args.json:
        json.dump({"plugins": rows, "failures": failures}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    headers = (
        "KIND",
        "NAME",
        "VERSION",
        "API",
        "DISTRIBUTION",
        "ENABLED",
        "PRIORITY",
        "DESCRIPTION",
    )
    lines: list[tuple[str, ...]] = [headers] + [
        (
            r["kind"],
            r["name"],
            r["version"],
            r["api_version"] or "-",
            r["distribution"],
            "yes" if r["enabled"] else "no",
            "" if r["priority"] is None else str(r["priority"]),
            r["description"],
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]
    for line in lines:
        out.write(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False))
            + "  "
            + line[-1]
            + "\n"
        )
    for failure in failures:
        out.write(
            f"FAILED {failure['plugin']} from {failure['distribution']}: {failure['reason']}\n"
        )
    return EXIT_OK


# -- config -------------------------------------------------------------------


def _validate(path: str, out: TextIO, err: TextIO) -> int:
    # A missing, unreadable or invalid file is a ConfigError from loading
    # (exit 2); a pipe such as <(...) is read like a file.
    plugins = load_plugins()
    config = load_config(path, plugins)  # raises ConfigError with every problem
    for failure in plugins.failures:
        if failure.distribution.startswith("path:"):
            print(f"warning: {failure}", file=err)
    enabled = [d.name for d in config.enabled_detectors()]
    print(f"{path}: valid; detectors in order: {', '.join(enabled) or 'none'}", file=out)
    return EXIT_OK


def _show(path: str | None, out: TextIO) -> int:
    plugins = load_plugins()
    config = load_config(path, plugins)
    document = {
        "cluster_domain": config.cluster_domain,
        "resync_interval": config.resync_interval,
        "output": unstructure(config.output),
        "health_checks": unstructure(config.health_checks),
        "detectors": {
            name: {
                "enabled": d.enabled,
                "priority": d.priority,
                "health_check": unstructure(d.health_check),
                "namespaces": list(d.namespaces.patterns),
                "required_annotations": list(d.required_annotations.spec),
                "config": unstructure(d.settings),
                **({"plugin": unstructure(d.plugin)} if d.plugin else {}),
            }
            for name, d in config.detectors.items()
        },
    }
    out.write(f"# effective configuration from {config.source}\n")
    out.write(yaml.safe_dump(document, sort_keys=False))
    return EXIT_OK
