"""Configuration: schema, strict loading, and every problem reported at once.

The file is YAML (``safe_load``, size- and alias-capped). It is structured by
one private cattrs converter with strict scalars (``enabled: "false"`` is a
type error, never ``True``) and unknown keys rejected. Loading happens in two
phases so that every problem is reported in one :class:`ConfigError`:

1. :func:`parse_config` checks the document against the schema, with no
   knowledge of plugins;
2. :func:`resolve_config` checks it against the installed detectors and
   renderers: unknown names, each detector's own ``config:`` block
   (structured by that detector's ``Settings`` class) and output formats.

:func:`load_config` does both; a missing file falls back to the defaults
(every installed detector enabled at its default priority).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NewType

import attrs
import yaml
from cattrs import Converter
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn

from dyntoolset.errors import ConfigError, Problem
from dyntoolset.matching import AnnotationRequirements, NamespaceFilter

if TYPE_CHECKING:
    from dyntoolset.plugins import PluginSet

log = logging.getLogger(__name__)

#: Configuration files larger than this are refused before parsing.
MAX_CONFIG_BYTES = 1024 * 1024
#: YAML aliases allowed in one document (bounds "billion laughs" expansion).
MAX_YAML_ALIASES = 100

Seconds = NewType("Seconds", float)
"""A positive duration: a number of seconds or a string like ``5s``, ``500ms``, ``1m30s``."""
NonNegativeInt = NewType("NonNegativeInt", int)
PositiveInt = NewType("PositiveInt", int)
Priority = NewType("Priority", int)
HealthPath = NewType("HealthPath", str)
DnsName = NewType("DnsName", str)
HostPattern = NewType("HostPattern", str)
"""A host name or shell-style pattern: ``prometheus.infra``, ``*.example.com``."""
Network = NewType("Network", str)
"""An IP network in CIDR notation (``127.0.0.0/8``) or a single address."""
#: A mapping structured later by a detector's own ``Settings`` class.
RawMapping = NewType("RawMapping", dict[str, Any])

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HOST_PATTERN = re.compile(r"^[a-z0-9*](?:[a-z0-9*.-]{0,251}[a-z0-9*])?$")
_FORBIDDEN_IN_PATH = ("@", "#", "\\", "\r", "\n", "..", "?")


def health_path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe health-check path, or ``None`` if it is."""
    if not path.startswith("/"):
        return f"health path {path!r} must start with '/'"
    if len(path) > 1024:
        return "health path is longer than 1024 characters"
    bad = [c for c in _FORBIDDEN_IN_PATH if c in path]
    if bad or not path.isprintable():
        return f"health path {path!r} must not contain {', '.join(map(repr, bad)) or 'control characters'}"
    return None


# -- Schema -------------------------------------------------------------------


@attrs.frozen
class HealthCheckSettings:
    """``detectors.<name>.health_check``: how one detector's services are probed."""

    #: Path to GET; ``None`` means the detector's default (``/-/healthy`` …).
    path: HealthPath | None = None
    #: Timeout of one attempt, seconds.
    timeout: Seconds = Seconds(5.0)
    #: Extra attempts after a failure (exponential backoff with jitter between).
    retries: NonNegativeInt = NonNegativeInt(2)


@attrs.frozen
class PluginSource:
    """``detectors.<name>.plugin``: where a detector not installed as a package comes from.

    ``path`` is a Python file, a package directory or a compiled extension
    module that implements ``register_detectors``. ``config`` is the seed's
    spelling of the detector's own settings (same as ``config:`` on the block).
    """

    path: str | None = None
    config: RawMapping | None = None


@attrs.frozen
class DetectorBlock:
    """One ``detectors.<name>`` block as written (detector settings still raw)."""

    enabled: bool = True
    priority: Priority | None = None
    health_check: HealthCheckSettings = HealthCheckSettings()
    namespaces: NamespaceFilter = NamespaceFilter()  # noqa: RUF009 - immutable
    required_annotations: AnnotationRequirements = AnnotationRequirements()  # noqa: RUF009
    config: RawMapping | None = None
    plugin: PluginSource | None = None


@attrs.frozen
class OutputSettings:
    """``output``: the ConfigMap dyntoolset maintains."""

    name: DnsName = DnsName("kubernaut-toolset-config")
    namespace: DnsName = DnsName("kubernaut-system")
    #: Renderers whose documents the ConfigMap carries, one data key each;
    #: unset means every installed renderer (``holmesgpt`` and ``kubernaut``
    #: when only the built-ins are installed).
    formats: tuple[str, ...] | None = None


@attrs.frozen
class HealthChecksConfig:
    """``health_checks``: global health-check behaviour."""

    enabled: bool = True
    #: ``direct`` (in-cluster DNS), ``apiserver-proxy`` (through the API
    #: server's service proxy) or ``auto`` (direct in-cluster, proxy otherwise).
    mode: Literal["auto", "direct", "apiserver-proxy"] = "auto"
    #: Checks in flight at once.
    concurrency: PositiveInt = PositiveInt(32)
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
class RawConfig:
    """The whole document as written, schema-checked, detectors not yet resolved."""

    cluster_domain: DnsName = DnsName("cluster.local")
    resync_interval: Seconds = Seconds(300.0)
    output: OutputSettings = OutputSettings()
    health_checks: HealthChecksConfig = HealthChecksConfig()
    detectors: dict[str, DetectorBlock] | None = None


@attrs.frozen
class DetectorConfig:
    """The effective configuration of one detector (defaults applied)."""

    name: str
    enabled: bool
    priority: int
    health_check: HealthCheckSettings
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
    health_checks: HealthChecksConfig
    #: Every known detector by name, enabled or not.
    detectors: Mapping[str, DetectorConfig]
    #: Where it came from: a file path, or ``"defaults"``.
    source: str = "defaults"

    def enabled_detectors(self) -> list[DetectorConfig]:
        """Enabled detectors in run order: priority (lower first), then name."""
        return sorted(
            (d for d in self.detectors.values() if d.enabled), key=lambda d: (d.priority, d.name)
        )


# -- The converter ------------------------------------------------------------


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _strict(kind: type, label: str) -> Any:
    def hook(value: Any, _: Any) -> Any:
        # bool is an int subclass: reject it where an int or float is wanted.
        if type(value) is bool and kind is not bool:
            raise TypeError(f"expected {label}, got {_describe(value)}")
        if kind is float and type(value) is int:
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}, got {_describe(value)}")
        return value

    return hook


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Go-style duration string (``5s``, ``1m30s``, ``250ms``)."""
    if type(value) in (int, float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(
                f"expected a duration such as 5s, 500ms, 1m30s or a number of seconds, "
                f"got {_describe(value)}"
            )
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise TypeError(f"expected a duration, got {_describe(value)}")
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {_describe(value)}")
    return seconds


def _bounded_int(low: int, high: int) -> Any:
    strict_int = _strict(int, "int")

    def hook(value: Any, _: Any) -> int:
        number: int = strict_int(value, int)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}, got {number}")
        return number

    return hook


def _health_path(value: Any, _: Any) -> str:
    path: str = _strict(str, "str")(value, str)
    problem = health_path_problem(path)
    if problem:
        raise ValueError(problem)
    return path


def _dns_name(value: Any, _: Any) -> str:
    name: str = _strict(str, "str")(value, str)
    if len(name) > 253 or not _DNS_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid DNS name (lowercase letters, digits, '-', '.')")
    return name


def _host_pattern(value: Any, _: Any) -> str:
    pattern: str = _strict(str, "str")(value, str)
    if not _HOST_PATTERN.match(pattern):
        raise ValueError(
            f"{pattern!r} is not a host name pattern: use lowercase letters, digits, "
            f"'-', '.' and '*' wildcards, like '*.example.com'"
        )
    return pattern


def _network(value: Any, _: Any) -> str:
    text: str = _strict(str, "str")(value, str)
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP network such as 127.0.0.0/8 or ::1") from None
    return text


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {_describe(value)}")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise TypeError(f"expected a list of strings, got {_describe(bad[0])} in the list")
    return value


def _literal(value: Any, literal: Any) -> Any:
    allowed = literal.__args__
    if value not in allowed or type(value) is bool:
        raise ValueError(f"expected one of {', '.join(map(repr, allowed))}, got {_describe(value)}")
    return value


def _make_converter() -> Converter:
    converter = Converter(forbid_extra_keys=True)
    converter.register_structure_hook(bool, _strict(bool, "bool (true or false)"))
    converter.register_structure_hook(int, _strict(int, "int"))
    converter.register_structure_hook(float, _strict(float, "number"))
    converter.register_structure_hook(str, _strict(str, "str"))
    converter.register_structure_hook(Seconds, lambda v, _: parse_duration(v))
    converter.register_structure_hook(NonNegativeInt, _bounded_int(0, 1000))
    converter.register_structure_hook(PositiveInt, _bounded_int(1, 1_000_000_000))
    converter.register_structure_hook(Priority, _bounded_int(0, 1_000_000))
    converter.register_structure_hook(HealthPath, _health_path)
    converter.register_structure_hook(DnsName, _dns_name)
    converter.register_structure_hook(HostPattern, _host_pattern)
    converter.register_structure_hook(Network, _network)
    converter.register_structure_hook(
        NamespaceFilter, lambda v, _: NamespaceFilter(_string_list(v))
    )
    converter.register_structure_hook(
        AnnotationRequirements, lambda v, _: AnnotationRequirements(_string_list(v))
    )

    def mapping_of_anything(value: Any, _: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {_describe(value)}")
        return value

    converter.register_structure_hook(RawMapping, mapping_of_anything)

    # Check "is it a mapping" first, so a scalar where a block belongs gets a
    # clear message rather than an AttributeError from deep inside cattrs.
    def mapping_first(make: Any) -> Any:
        def factory(cl: Any) -> Any:
            inner = make(cl)

            def hook(value: Any, target: Any) -> Any:
                if not isinstance(value, dict):
                    raise TypeError(f"expected a mapping, got {_describe(value)}")
                return inner(value, target)

            return hook

        return factory

    def attrs_class(cl: Any) -> Any:
        inner = make_dict_structure_fn(cl, converter, _cattrs_forbid_extra_keys=True)

        def hook(value: Any, target: Any) -> Any:
            try:
                return inner(value, target)
            except ClassValidationError as exc:
                attributed, unattributed = exc.group_exceptions()
                if attributed or not unattributed:
                    raise
                # Raised by the class itself (an attrs validator), which cattrs
                # cannot attribute to a field: find the field it belongs to.
                raise _attribute_validator_errors(converter, cl, value) or exc from None

        return hook

    converter.register_structure_hook_factory(attrs.has, mapping_first(attrs_class))

    # A YAML string where a list belongs would otherwise become a list of characters.
    def list_first(cl: Any) -> Any:
        item = cl.__args__[0]

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {_describe(value)}")
            return cl.__origin__(converter.structure(value, list[item]))  # type: ignore[valid-type]

        return hook

    converter.register_structure_hook_factory(
        lambda t: getattr(t, "__origin__", None) is tuple and t.__args__[-1] is Ellipsis, list_first
    )
    converter.register_structure_hook_factory(
        lambda t: getattr(t, "__origin__", None) is dict,
        mapping_first(lambda cl: make_mapping_structure_fn(cl, converter)),
    )
    converter.register_structure_hook_func(
        lambda t: getattr(t, "__origin__", None) is Literal, _literal
    )
    return converter


def _attribute_validator_errors(
    converter: Converter, cl: Any, value: dict[str, Any]
) -> ClassValidationError | None:
    """Re-run each field's validator alone, so its error carries the field's path."""
    errors: list[Exception] = []
    for field in attrs.fields(attrs.resolve_types(cl)):
        if field.validator is None or field.name not in value:
            continue
        try:
            field.validator(None, field, converter.structure(value[field.name], field.type))
        except (ValueError, TypeError) as exc:
            exc.__notes__ = [
                AttributeValidationNote(
                    f"Structuring {cl.__qualname__}.{field.name}", field.name, field.type
                )
            ]
            errors.append(exc)
    if not errors:
        return None
    return ClassValidationError(f"While structuring {cl.__qualname__}", errors, cl)


_converter = _make_converter()


def _segment(name: Any) -> str:
    if isinstance(name, int):
        return f"[{name}]"
    text = str(name)
    return f".{text}" if re.fullmatch(r"[A-Za-z0-9_-]+", text) else f"[{text!r}]"


def _collect(exc: BaseException, path: str, out: list[Problem], fields: Sequence[str] = ()) -> None:
    """Flatten a cattrs exception tree into ``$.path: message`` problems."""
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        known = [a.name for a in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        for sub, note in with_notes:
            _collect(sub, path + _segment(note.name), out)
        for sub in without:
            _collect(sub, path, out, known)
    elif isinstance(exc, IterableValidationError):
        indexed, rest = exc.group_exceptions()
        for sub, index_note in indexed:
            _collect(sub, path + _segment(index_note.index), out)
        for sub in rest:
            _collect(sub, path, out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        allowed = sorted(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else fields
        for key in sorted(exc.extra_fields):
            out.append(
                Problem(path + _segment(key), f"unknown key; expected one of: {', '.join(allowed)}")
            )
    elif isinstance(exc, KeyError):
        out.append(Problem(path, f"required key {exc.args[0]!r} is missing"))
    elif isinstance(exc, (TypeError, ValueError)):
        out.append(Problem(path, str(exc)))
    else:  # pragma: no cover - cattrs raises only the kinds above
        out.append(Problem(path, f"{type(exc).__name__}: {exc}"))


def structure(data: Any, cls: type, path: str = "$") -> tuple[Any, list[Problem]]:
    """Structure ``data`` into ``cls`` strictly; returns ``(value or None, problems)``."""
    if attrs.has(cls) and not isinstance(data, dict):
        return None, [Problem(path, f"expected a mapping, got {_describe(data)}")]
    try:
        return _converter.structure(data, cls), []
    except (ClassValidationError, IterableValidationError, TypeError, ValueError) as exc:
        problems: list[Problem] = []
        _collect(exc, path, problems)
        return None, problems


def unstructure(value: Any) -> Any:
    """Plain data (for ``config show``) from any configuration object."""
    return _converter.unstructure(value)


# -- YAML ---------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents with too many aliases."""

    aliases_seen = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} YAML aliases")
        return super().compose_node(parent, index)


def load_bounded_yaml(text: str) -> tuple[Any, list[Problem]]:
    """``yaml.safe_load`` with the size and alias caps; problems carry line and column."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        return None, [Problem("$", f"file is larger than {MAX_CONFIG_BYTES} bytes")]
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data(), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, [Problem("$", f"invalid YAML{where}: {exc.problem}")]
    except yaml.YAMLError as exc:
        return None, [Problem("$", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()


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
        return None, [Problem("$", f"expected a mapping, got {_describe(data)}")]
    fields = attrs.fields_dict(attrs.resolve_types(RawConfig))
    values: dict[str, Any] = {}
    for key, value in data.items():
        field = fields.get(key) if isinstance(key, str) else None
        if field is None:
            problems.append(
                Problem(
                    "$" + _segment(key),
                    f"unknown key; expected one of: {', '.join(sorted(fields))}",
                )
            )
        elif key == "detectors":
            values[key] = _detector_blocks(value, problems)
        else:
            section_type: Any = field.type  # a class: resolve_types ran above
            structured, section_problems = structure(value, section_type, "$" + _segment(key))
            problems += section_problems
            if not section_problems:
                values[key] = structured
    return RawConfig(**values), problems


def _detector_blocks(value: Any, problems: list[Problem]) -> dict[str, DetectorBlock] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem("$.detectors", f"expected a mapping, got {_describe(value)}"))
        return None
    blocks = {}
    for name, block in value.items():
        if not isinstance(name, str):
            problems.append(
                Problem("$.detectors", f"detector names are strings, got {_describe(name)}")
            )
            continue
        structured, block_problems = structure(block, DetectorBlock, "$.detectors" + _segment(name))
        problems += block_problems
        blocks[name] = structured if structured is not None else DetectorBlock()
    return blocks


def _detector_settings(
    name: str, block: DetectorBlock, settings_cls: type
) -> tuple[Any, list[Problem]]:
    base = f"$.detectors{_segment(name)}"
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
        if name not in known and not (block.plugin and block.plugin.path):
            problems.append(
                Problem(
                    f"$.detectors{_segment(name)}",
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
        ),
        [],
    )


def parse_and_resolve(text: str, plugins: PluginSet, source: str) -> Config:
    """Both phases on ``text``; raises :class:`ConfigError` listing every problem."""
    raw, problems = parse_config(text)
    if raw is not None:
        config, more = resolve_config(raw, plugins, source)
        if config is not None and not problems:
            return config
        problems += more
    raise ConfigError(problems, source)


def read_config_text(path: str | Path | None) -> tuple[str, str]:
    """The text of the configuration file and its source name.

    ``None`` or a missing file gives ``("", "defaults")`` (a missing file is
    logged). Unreadable or oversized files raise :class:`ConfigError`.
    """
    if path is None:
        return "", "defaults"
    file = Path(path)
    source = str(file)
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                [Problem("$", f"file is larger than {MAX_CONFIG_BYTES} bytes")], source
            )
        return file.read_text(encoding="utf-8"), source
    except FileNotFoundError:
        log.warning("configuration file %s not found; using defaults (all detectors enabled)", file)
        return "", "defaults"
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("$", f"file is not UTF-8 text: {exc.reason}")], source) from exc
    except OSError as exc:
        raise ConfigError(
            [Problem("$", f"cannot read file: {exc.strerror or exc}")], source
        ) from exc


def load_config(path: str | Path | None, plugins: PluginSet) -> Config:
    """Load the configuration file at ``path`` against ``plugins``.

    ``None`` or a missing file gives the defaults (every installed detector
    enabled at its default priority; a missing file is logged). A file that
    exists but is invalid raises :class:`ConfigError`: never a silent fallback.
    """
    text, source = read_config_text(path)
    return parse_and_resolve(text, plugins, source)
