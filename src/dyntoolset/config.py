"""Configuration: schema, strict loading, and every problem reported at once.

The file is YAML, read by :mod:`dyntoolset.boundedyaml` (size, expansion and
depth bounds), and structured by the strict converter of
:mod:`dyntoolset.convert` (``enabled: "false"`` is a type error, never
``True``; unknown keys are rejected). Loading happens in two phases so that
every problem is reported in one :class:`ConfigError`:

1. :func:`parse_config` checks the document against the schema, with no
   knowledge of plugins;
2. :func:`resolve_config` checks it against the installed detectors and
   renderers: unknown names, each detector's own ``config:`` block
   (structured by that detector's ``Settings`` class) and output formats.

:func:`load_config` (a file) and :func:`load_config_text` (text from
elsewhere, such as a ConfigMap) do both, and load ``plugin.path`` detectors
in between.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from dyntoolset.boundedyaml import MAX_YAML_BYTES, load_bounded_yaml
from dyntoolset.convert import path_segment, structure
from dyntoolset.errors import ConfigError, Problem, describe
from dyntoolset.matching import AnnotationRequirements, NamespaceFilter
from dyntoolset.values import (
    ClusterDomain,
    DnsLabel,
    DnsName,
    HealthPath,
    HostPattern,
    Network,
    NonNegativeInt,
    PositiveInt,
    Priority,
    RawMapping,
    Seconds,
)

if TYPE_CHECKING:
    from dyntoolset.plugins import PluginSet

log = logging.getLogger(__name__)

#: Configuration files larger than this are refused before parsing.
MAX_CONFIG_BYTES = MAX_YAML_BYTES

# -- Schema -------------------------------------------------------------------


@attrs.frozen
class DetectorHealthCheck:
    """``detectors.<name>.health_check``: how one detector's services are probed."""

    #: Path to GET; ``None`` means the detector's default (``/-/healthy`` …).
    path: HealthPath | None = None
    #: Timeout of one attempt, seconds.
    timeout: Seconds = Seconds(5.0)
    #: Extra attempts after a failure (exponential backoff with jitter between).
    retries: NonNegativeInt = NonNegativeInt(2)
    #: ``http``, ``tcp`` or ``none``; ``None`` means the detector's own
    #: (``Detector.health_check``).
    kind: Literal["http", "tcp", "none"] | None = None


@attrs.frozen
class PluginSource:
    """``detectors.<name>.plugin``: where a detector not installed as a package comes from.

    ``path`` is a Python file, a package directory or a compiled extension
    module that implements ``register_detectors``. ``config`` is the
    requirements' spelling (AC-040-03) of the detector's own settings (same as ``config:`` on the block).
    """

    #: A Python file, package directory or compiled extension module that
    #: registers a detector of this block's name.
    path: str | None = None
    #: The detector's own settings (the same as ``config:`` on the block; give one).
    config: RawMapping | None = None


@attrs.frozen
class DetectorBlock:
    """One ``detectors.<name>`` block as written (detector settings still raw)."""

    #: Run this detector.
    enabled: bool = True
    #: Lower runs first; ties are broken by name; the first detector that
    #: matches a Service wins. Unset: the detector's ``default_priority``.
    priority: Priority | None = None
    #: How this detector's services are checked.
    health_check: DetectorHealthCheck = DetectorHealthCheck()
    #: Shell patterns of the namespaces looked at, ``!`` excluding; empty: all.
    namespaces: NamespaceFilter = NamespaceFilter()  # immutable, shared safely
    #: Clauses that must all hold; ``a | b`` alternatives, ``key`` or ``key=value``.
    required_annotations: AnnotationRequirements = AnnotationRequirements()
    #: The detector's own settings, structured by its ``Settings`` class.
    config: RawMapping | None = None
    #: Load the detector from a path when it is not installed as a package.
    plugin: PluginSource | None = None


@attrs.frozen
class OutputSettings:
    """``output``: the ConfigMap dyntoolset maintains."""

    #: Name of the ConfigMap.
    name: DnsName = DnsName("kubernaut-toolset-config")
    #: Namespace of the ConfigMap.
    namespace: DnsLabel = DnsLabel("kubernaut-system")
    #: Renderers whose documents the ConfigMap carries, one data key each;
    #: unset means every installed renderer (``holmesgpt`` and ``kubernaut``
    #: when only the built-ins are installed).
    formats: tuple[str, ...] | None = None


@attrs.frozen
class GlobalHealthChecks:
    """``health_checks``: global health-check behaviour."""

    #: Check services before including them; ``false`` includes every match unchecked.
    enabled: bool = True
    #: ``direct`` (in-cluster DNS), ``apiserver-proxy`` (through the API
    #: server's service proxy) or ``auto`` (direct in-cluster, proxy otherwise).
    mode: Literal["auto", "direct", "apiserver-proxy"] = "auto"
    #: Checks in flight at once. Sized to a fan-out of 1,000 endpoints with a
    #: quarter of them black-holed: a black-holed check holds its worker for
    #: its whole timeout, so a round takes about one check's time only while
    #: the black holes fit in at once. Each worker holds one thread and at
    #: most one socket, and a round starts no more workers than it has checks
    #: (docs/health-checks.md, "Parallelism"; benchmarks workload 6).
    concurrency: PositiveInt = PositiveInt(256)
    #: Connections to the API server at most in ``apiserver-proxy`` mode, one
    #: per check in flight: checks beyond it wait for a free one (within the
    #: round's deadline; the wait is not part of a check's timeout). Kept
    #: apart from ``concurrency`` so a wide fan-out does not open as many
    #: connections to the API server.
    proxy_connections: PositiveInt = PositiveInt(32)
    #: Upper bound for one whole round of checks.
    deadline: Seconds = Seconds(30.0)
    #: How long a result is reused before the service is probed again.
    cache_ttl: Seconds = Seconds(60.0)
    #: Consecutive failures before a service already in the toolsets is dropped.
    failure_threshold: PositiveInt = PositiveInt(3)
    #: Emit services whose check failed (marked unhealthy) instead of leaving them out.
    include_unhealthy: bool = False
    #: Count a 3xx answer as healthy (redirects are never followed).
    redirects_are_healthy: bool = False
    #: Extra hosts (shell patterns) that ``kubernaut.io/toolset-endpoint``
    #: overrides may name and checks may target, besides the Service's own
    #: DNS names. IP literals, ``localhost`` and metadata names never pass.
    allowed_hosts: tuple[HostPattern, ...] = ()
    #: Networks (CIDR) allowed although they are normally blocked (loopback …).
    allowed_networks: tuple[Network, ...] = ()
    #: CA bundle for https checks; the system store when unset.
    ca_file: str | None = None
    #: Bytes of a response body read at most.
    max_body_bytes: PositiveInt = PositiveInt(65536)


@attrs.frozen
class ApiAuth:
    """``api.auth``: who may call ``/api/v1/*`` on the ``--listen`` listener.

    ``kubernetes`` asks the API server (TokenReview, then SubjectAccessReview);
    ``static`` accepts the tokens of ``token_file`` (one per line, ``#``
    comments, re-read when the file changes); ``none`` lets anyone in and is
    accepted by ``dyntoolset run`` only on a loopback ``--listen`` address.
    """

    #: ``kubernetes`` (TokenReview + SubjectAccessReview), ``static`` (a token file) or ``none``.
    mode: Literal["none", "static", "kubernetes"] = "kubernetes"
    #: The static tokens (``mode: static`` only, required there).
    token_file: str | None = None
    #: ``spec.audiences`` of each TokenReview (``mode: kubernetes``); empty: the API server's.
    audiences: tuple[str, ...] = ()
    #: Seconds an allow or deny decision is reused (0: ask the API server every time).
    cache_ttl: NonNegativeInt = NonNegativeInt(10)


@attrs.frozen
class ApiSettings:
    """``api``: the HTTP API served next to the probes."""

    #: Who may call ``/api/v1/*``.
    auth: ApiAuth = ApiAuth()


@attrs.frozen
class RawConfig:
    """The whole document as written, schema-checked, detectors not yet resolved."""

    #: Domain of the endpoints built, ``http://<svc>.<ns>.svc.<domain>:<port>``.
    cluster_domain: ClusterDomain = ClusterDomain("cluster.local")
    #: Period of the full reconcile, a safety net behind the watch.
    resync_interval: Seconds = Seconds(300.0)
    #: The ConfigMap dyntoolset maintains.
    output: OutputSettings = OutputSettings()
    #: Global health-check behaviour.
    health_checks: GlobalHealthChecks = GlobalHealthChecks()
    #: The HTTP API (``/api/v1``): its authentication.
    api: ApiSettings = ApiSettings()
    #: Per-detector blocks keyed by detector name; unset: every installed
    #: detector at its default priority.
    detectors: dict[str, DetectorBlock] | None = None


@attrs.frozen
class DetectorConfig:
    """The effective configuration of one detector (defaults applied)."""

    name: str
    enabled: bool
    priority: int
    health_check: DetectorHealthCheck
    namespaces: NamespaceFilter
    required_annotations: AnnotationRequirements
    #: An instance of the detector's own ``Settings`` class.
    settings: Any
    plugin: PluginSource | None = None


@attrs.frozen
class Config:
    """The effective configuration: what the runner and discovery use."""

    cluster_domain: str
    resync_interval: float
    output: OutputSettings
    health_checks: GlobalHealthChecks
    #: Every known detector by name, enabled or not.
    detectors: Mapping[str, DetectorConfig]
    #: Where it came from: a file path, or ``"defaults"``.
    source: str = "defaults"
    #: The HTTP API's settings (authentication).
    api: ApiSettings = ApiSettings()

    def enabled_detectors(self) -> list[DetectorConfig]:
        """Enabled detectors in run order: priority (lower first), then name."""
        return sorted(
            (d for d in self.detectors.values() if d.enabled), key=lambda d: (d.priority, d.name)
        )


# -- Loading ------------------------------------------------------------------


def parse_config(text: str) -> tuple[RawConfig | None, list[Problem]]:
    """Phase 1: YAML and schema.

    Each top-level section and each detector block is structured on its own,
    so one bad section does not hide the problems of the others; the
    returned :class:`RawConfig` has defaults where a section was invalid
    (``None`` only when the document is not a mapping at all). The caller
    must treat any problem as fatal.
    """
    data, problems = load_bounded_yaml(text)
    if problems:
        return None, problems
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [Problem("$", f"expected a mapping, got {describe(data)}")]
    fields = attrs.fields_dict(attrs.resolve_types(RawConfig))
    values: dict[str, Any] = {}
    for key, value in data.items():
        field = fields.get(key) if isinstance(key, str) else None
        if field is None:
            problems.append(
                Problem(
                    "$" + path_segment(key),
                    f"unknown key; expected one of: {', '.join(sorted(fields))}",
                )
            )
        elif key == "detectors":
            values[key] = _detector_blocks(value, problems)
        else:
            section_type: Any = field.type  # a class: resolve_types ran above
            structured, section_problems = structure(value, section_type, "$" + path_segment(key))
            if not section_problems and key == "api":
                section_problems = _api_problems(structured)
            problems += section_problems
            if not section_problems:
                values[key] = structured
    return RawConfig(**values), problems


def _api_problems(api: ApiSettings) -> list[Problem]:
    """What the schema cannot say of ``api``: static mode needs its token file."""
    if api.auth.mode == "static" and not api.auth.token_file:
        return [
            Problem(
                "$.api.auth.token_file",
                "required when mode is static: the file holding the accepted tokens, one per line",
            )
        ]
    return []


def _detector_blocks(value: Any, problems: list[Problem]) -> dict[str, DetectorBlock] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem("$.detectors", f"expected a mapping, got {describe(value)}"))
        return None
    blocks = {}
    for name, block in value.items():
        if not isinstance(name, str):
            problems.append(
                Problem("$.detectors", f"detector names are strings, got {describe(name)}")
            )
            continue
        structured, block_problems = structure(
            block, DetectorBlock, "$.detectors" + path_segment(name)
        )
        problems += block_problems
        blocks[name] = structured if structured is not None else DetectorBlock()
    return blocks


def _detector_settings(
    name: str, block: DetectorBlock, settings_cls: type
) -> tuple[Any, list[Problem]]:
    base = f"$.detectors{path_segment(name)}"
    plugin_config = block.plugin.config if block.plugin else None
    if block.config is not None and plugin_config is not None:
        return None, [
            Problem(base, "set the detector's settings in 'config' or 'plugin.config', not both")
        ]
    if plugin_config is not None:
        return structure(plugin_config, settings_cls, f"{base}.plugin.config")
    return structure(block.config or {}, settings_cls, f"{base}.config")


def resolve_config(
    raw: RawConfig, plugins: PluginSet, source: str = "defaults"
) -> tuple[Config | None, list[Problem]]:
    """Phase 2: check ``raw`` against the installed plugins and apply defaults."""
    problems: list[Problem] = []
    blocks = raw.detectors or {}
    known = plugins.detectors
    for name, block in blocks.items():
        path = block.plugin.path if block.plugin else None
        if path and name in known and not known[name].distribution.startswith("path:"):
            problems.append(
                Problem(
                    f"$.detectors{path_segment(name)}.plugin.path",
                    f"detector {name!r} is already installed (from "
                    f"{known[name].distribution}); remove plugin.path, or give the detector "
                    f"in the file another name",
                )
            )
        if name not in known and not path:
            problems.append(
                Problem(
                    f"$.detectors{path_segment(name)}",
                    f"unknown detector {name!r}; installed detectors: {', '.join(sorted(known)) or 'none'}"
                    + (
                        f" ({', '.join(sorted(plugins.failed))} failed to load)"
                        if plugins.failed
                        else ""
                    ),
                )
            )
    detectors: dict[str, DetectorConfig] = {}
    for name, info in sorted(known.items()):
        block = blocks.get(name, DetectorBlock())
        settings, settings_problems = _detector_settings(name, block, info.cls.Settings)
        problems += settings_problems
        detectors[name] = DetectorConfig(
            name=name,
            enabled=block.enabled,
            priority=block.priority if block.priority is not None else info.cls.default_priority,
            health_check=block.health_check,
            namespaces=block.namespaces,
            required_annotations=block.required_annotations,
            settings=settings,
            plugin=block.plugin,
        )
    formats = raw.output.formats
    if formats is None:
        formats = tuple(sorted(plugins.renderers))
    for index, fmt in enumerate(formats):
        if fmt not in plugins.renderers:
            problems.append(
                Problem(
                    f"$.output.formats[{index}]",
                    f"unknown output format {fmt!r}; installed: {', '.join(sorted(plugins.renderers)) or 'none'}",
                )
            )
    if len(set(formats)) != len(formats):
        problems.append(Problem("$.output.formats", "lists a format more than once"))
    if problems:
        return None, problems
    return (
        Config(
            cluster_domain=raw.cluster_domain,
            resync_interval=raw.resync_interval,
            output=attrs.evolve(raw.output, formats=formats),
            health_checks=raw.health_checks,
            detectors=detectors,
            source=source,
            api=raw.api,
        ),
        [],
    )


def load_config_text(text: str, source: str, plugins: PluginSet) -> Config:
    """Both phases on ``text`` (read from ``source``); see :func:`load_config`.

    Raises :class:`ConfigError` listing every problem of both phases.
    """
    raw, problems = parse_config(text)
    if raw is None:
        raise ConfigError(problems, source)
    for name, block in sorted((raw.detectors or {}).items()):
        path = block.plugin.path if block.plugin else None
        if path and name not in plugins.detectors and not plugins.load_path_detector(name, path):
            log.warning("detector %s (plugin.path %s) failed to load; it will not run", name, path)
    config, more = resolve_config(raw, plugins, source)
    if config is None or problems:
        raise ConfigError(problems + more, source)
    return config


def read_config_text(path: str | Path | None) -> tuple[str, str]:
    """The text of the configuration file and its source name.

    ``None`` (no file named) gives ``("", "defaults")``. A file named
    explicitly must exist: a missing, unreadable or oversized file raises
    :class:`ConfigError`, since a typo in the path would otherwise silently
    run every detector with the defaults. A caller with a default location
    that may be absent checks for it and passes ``None``.
    """
    if path is None:
        return "", "defaults"
    file = Path(path)
    source = str(file)
    try:
        # Read at most one byte past the cap rather than trusting stat():
        # a pipe (<(...)) reports size 0 whatever it holds.
        with file.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                [Problem("$", f"file is larger than {MAX_CONFIG_BYTES} bytes")], source
            )
        return data.decode("utf-8"), source
    except FileNotFoundError:
        raise ConfigError(
            [Problem("$", "no such file (leave the path out to use the defaults)")], source
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("$", f"file is not UTF-8 text: {exc.reason}")], source) from exc
    except OSError as exc:
        raise ConfigError(
            [Problem("$", f"cannot read file: {exc.strerror or exc}")], source
        ) from exc


def load_config(path: str | Path | None, plugins: PluginSet) -> Config:
    """The one way to load a configuration: read, validate and resolve the file at ``path``.

    ``None`` gives the defaults (every installed detector enabled at its
    default priority). A file that is named but missing, unreadable or
    invalid raises :class:`ConfigError` listing every problem: never a
    silent fallback.

    **This extends** ``plugins``: a detector configured with ``plugin.path``
    that is not installed is loaded from that file and added to ``plugins``
    (:meth:`~dyntoolset.plugins.PluginSet.load_path_detector`), so the engine
    built from both runs it. A detector whose file fails to load is logged,
    recorded in ``plugins.failures`` and does not run; the others do.
    """
    text, source = read_config_text(path)
    return load_config_text(text, source, plugins)
