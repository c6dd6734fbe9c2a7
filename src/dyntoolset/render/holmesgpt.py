"""The ``holmesgpt`` renderer: a HolmesGPT custom toolset file (``custom_toolset.yaml``).

The document is what HolmesGPT 0.45 reads from ``CUSTOM_TOOLSET_LOCATION``
(default ``/etc/holmes/config/custom_toolset.yaml``)::

    toolsets:
      prometheus/metrics:              # a built-in toolset, one server: flat config
        enabled: true
        config: {prometheus_url: http://prometheus.monitoring.svc.cluster.local:9090}
      grafana/dashboards:              # a built-in toolset, several servers
        enabled: true
        config:
          instances:
          - {name: monitoring/grafana, api_url: http://grafana.monitoring.svc.cluster.local:80}
          - {name: team-a/grafana, api_url: http://grafana.team-a.svc.cluster.local:3000}
      jaeger/tracing/jaeger-query:     # anything else: a generic HTTP toolset
        type: http
        enabled: true
        description: ...
        llm_instructions: ...
        config: {endpoints: [{hosts: [...], paths: [...], methods: [GET]}]}

Why it looks like this (holmesgpt 0.45.0 source):

* A name that is not a built-in toolset and has no ``type:`` is loaded as a
  custom YAML toolset that must define ``description`` and ``tools``
  (``core/toolset_manager.py`` ``_load_toolsets_from_config``), so built-in
  toolsets are only ever emitted under their own names.
* There is no way to declare a second, differently named instance of a
  built-in toolset. Instead the built-ins we emit are wrapped by
  ``multi_instance(...)`` (``plugins/toolsets/__init__.py``), which accepts
  either the normal flat config or ``{instances: [{name, ...flat config}]}``
  (``plugins/toolsets/multi_instance.py`` ``_parse_instances``) and gives the
  model an ``instance`` parameter and a ``<toolset>_list_instances`` tool when
  there is more than one. Instance names are the Services' ``namespace/name``.
* ``type: http`` entries become ``HttpToolset`` objects whose single tool is
  named ``<name with / and - replaced by _>_request``; names here keep that
  tool name unique and within the 64 characters LLM APIs allow.
* An empty ``toolsets:`` mapping makes HolmesGPT raise ("No 'toolsets' or
  'mcp_servers' key found") and fail to list any toolset, so with nothing
  discovered the document holds one disabled placeholder entry.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from typing import Any, ClassVar

import yaml

from dyntoolset.hookspecs import PLUGIN_API_VERSION, hookimpl
from dyntoolset.model import Discovered, ToolsetSpec
from dyntoolset.render._common import (
    UnrenderableError,
    clean_text,
    ordered,
    plain_config,
    short_hash,
    unique_names,
)
from dyntoolset.renderer import Renderer
from dyntoolset.toolsets import BUILTIN_URL_KEYS, HTTP_KIND

log = logging.getLogger(__name__)

#: Entry written when nothing was discovered (see the module docstring).
PLACEHOLDER_NAME = "dyntoolset/none"

# LLM APIs (OpenAI, Anthropic) accept tool names of at most 64 characters;
# HolmesGPT appends "_request" (8) to the toolset name to name the HTTP tool.
_MAX_HTTP_NAME = 64 - len("_request")
_HASH_SUFFIX = 1 + 8  # "-" and short_hash()
_MAX_TYPE = 20
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9-]+")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_SCHEMES = frozenset({"http", "https"})
# A HolmesGPT toolset name: lowercase words joined by "/" ("opensearch/query_assist"),
# or one word: HolmesGPT 0.45 names some toolsets so ("victorialogs", "slab").
_KIND = re.compile(r"[a-z0-9][a-z0-9_-]*(?:/[a-z0-9][a-z0-9_-]*)*")
# The keys HolmesGPT 0.45's HTTP toolset knows (HttpToolsetConfig, EndpointConfig,
# AuthConfig in holmes/plugins/toolsets/http/http_toolset.py): anything else is a
# typo that would reach the agent's configuration unnoticed.
_HTTP_CONFIG_KEYS = frozenset(
    {
        "endpoints",
        "verify_ssl",
        "timeout_seconds",
        "default_headers",
        "extra_headers",
        "client_cert_path",
        "client_key_path",
        "block_internal_ips",
    }
)
_HTTP_ENDPOINT_KEYS = frozenset({"hosts", "paths", "methods", "auth", "health_check_url"})
_HTTP_AUTH_KEYS = frozenset({"type", "username", "password", "token", "name", "value"})


class HolmesGPTRenderer(Renderer):
    """Renders the ``toolsets:`` YAML document HolmesGPT 0.45 loads as a custom toolset file."""

    name: ClassVar[str] = "holmesgpt"
    # The file name HolmesGPT's container reads (CUSTOM_TOOLSET_LOCATION) and
    # the key its Helm chart uses, so the ConfigMap key can be mounted as is.
    data_key: ClassVar[str] = "custom_toolset.yaml"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "HolmesGPT toolsets (custom_toolset.yaml): built-in prometheus/grafana/"
        "elasticsearch toolsets with one instance per server, generic HTTP toolsets otherwise"
    )

    def render(self, discovered: Sequence[Discovered]) -> str:
        """Return the YAML document for ``discovered``; see :func:`build_document`."""
        return _dump(build_document(discovered))

    def apply_overrides(self, document: str, overrides: Mapping[str, Any]) -> str:
        """Merge ``overrides.yaml``'s ``toolsets:`` into the document; the operator wins.

        Each entry is deep-merged into the generated one of the same name
        (mappings merge key by key, anything else replaces); an entry set to
        ``null`` removes the generated toolset; new names are added as
        written. Other top-level keys of ``overrides.yaml`` are not ours and
        are ignored.
        """
        wanted = overrides.get("toolsets")
        if wanted is None:
            return document
        if not isinstance(wanted, dict):
            raise ValueError(f"$.toolsets: expected a mapping, got {type(wanted).__name__}")
        for name, entry in wanted.items():
            if not isinstance(name, str) or not (entry is None or isinstance(entry, dict)):
                raise ValueError(f"$.toolsets.{name}: expected a mapping or null")
        # HolmesGPT reads the file with benedict, whose "." keypath separator
        # makes it refuse the *whole file* over one dotted key: applied, such an
        # override would cost the agent every toolset, generated ones included.
        problem = _dotted_key(wanted, "$.toolsets")
        if problem:
            raise ValueError(problem)
        # Our own document, just written by _dump: not untrusted input, and read
        # with the YAML 1.1 rules the dumper quoted it for (the bounded loader's
        # YAML 1.2 integers would turn an unquoted "0o17" into 15).
        data = yaml.safe_load(document)
        toolsets: dict[str, Any] = data["toolsets"]
        for name, entry in wanted.items():
            problem = _shadowed_url(name, toolsets.get(name), entry)
            if problem:
                raise ValueError(problem)
        if wanted and list(toolsets) == [PLACEHOLDER_NAME]:
            del toolsets[PLACEHOLDER_NAME]
        for name, entry in wanted.items():
            if entry is None:
                toolsets.pop(name, None)
            else:
                toolsets[name] = _deep_merge(toolsets.get(name, {}), entry)
        if not toolsets:  # everything removed: HolmesGPT cannot load an empty file
            toolsets[PLACEHOLDER_NAME] = _placeholder()
        return _dump(data)


def _shadowed_url(name: str, generated: Any, override: Any) -> str | None:
    """A problem when ``override`` sets the flat URL key of a multi-instance toolset.

    HolmesGPT merges flat keys into every instance and each instance's own
    URL wins, so such an override would silently change nothing.
    """
    url_key = BUILTIN_URL_KEYS.get(name)
    config = (generated or {}).get("config") if isinstance(generated, dict) else None
    wanted = override.get("config") if isinstance(override, dict) else None
    if (
        url_key
        and isinstance(config, dict)
        and "instances" in config
        and isinstance(wanted, dict)
        and url_key in wanted
        and "instances" not in wanted
    ):
        return (
            f"$.toolsets[{name!r}].config.{url_key}: the generated toolset has several "
            f"instances, each with its own {url_key}, which HolmesGPT prefers; override "
            f"config.instances instead, or set {name}: null and write the toolset yourself"
        )
    return None


def _dotted_key(value: Any, path: str) -> str | None:
    """Where ``value`` holds a mapping key containing ``.``, as a problem text, or ``None``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "." in key:
                return (
                    f"{path}: key {key!r} contains '.', and HolmesGPT refuses the whole "
                    f"file over such a key"
                )
            problem = _dotted_key(item, f"{path}.{key}")
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = _dotted_key(item, f"{path}[{index}]")
            if problem:
                return problem
    return None


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _deep_merge(base.get(key), value)
        return merged
    return override


def _dump(document: dict[str, Any]) -> str:
    # The pure-Python dumper on purpose. libyaml's CSafeDumper is ~6x faster
    # (measured with pytest-benchmark: ~0.05 s instead of ~0.3 s for the
    # ~1,500 toolsets of 10,000 Services), but its bytes differ from this
    # dumper's for some strings: long double-quoted scalars with escapes or
    # trailing blanks are folded elsewhere, an empty key is written '' instead
    # of ? '', and a lone surrogate (possible in overrides.yaml) raises instead
    # of being escaped. Output would then depend on how PyYAML was built, and
    # a CLI run could disagree byte for byte with the controller.
    return yaml.safe_dump(
        document,
        sort_keys=False,
        allow_unicode=False,  # PyYAML emits U+0085 raw and reads it back as a break
        default_flow_style=False,
        width=100,
    )


def _placeholder() -> dict[str, Any]:
    return {
        "type": HTTP_KIND,
        "enabled": False,
        "description": "dyntoolset has not discovered any observability backend yet",
        "config": {"endpoints": []},
    }


def build_document(discovered: Sequence[Discovered]) -> dict[str, Any]:
    """The document as data: ``{"toolsets": {name: entry}}``.

    Specs that HolmesGPT could not load (a kind that cannot name a toolset,
    config that cannot be carried, HTTP endpoints or keys it would reject) are
    left out and logged: one bad Service must not make the agent lose every
    toolset.
    """
    builtin: dict[str, list[tuple[str, tuple[str, ...], dict[str, Any]]]] = {
        kind: [] for kind in BUILTIN_URL_KEYS
    }
    http: list[tuple[Discovered, int, dict[str, Any]]] = []
    other: dict[str, list[tuple[str, ToolsetSpec, dict[str, Any]]]] = {}
    for found in ordered(discovered):
        seen: dict[str, int] = {}
        for spec in found.toolsets:
            seen[spec.kind] = count = seen.get(spec.kind, 0) + 1
            try:
                if spec.kind in BUILTIN_URL_KEYS:
                    instance = found.key if count == 1 else f"{found.key}#{count}"
                    seed = (found.service.namespace, found.service.name, found.detector, str(count))
                    builtin[spec.kind].append((clean_text(instance), seed, _builtin_config(spec)))
                elif spec.kind == HTTP_KIND:
                    http.append((found, count, _http_entry(found, spec)))
                else:
                    entry = (found.key, spec, _other_config(spec))
                    other.setdefault(_kind_name(spec.kind), []).append(entry)
            except UnrenderableError as err:
                log.warning(
                    "holmesgpt: leaving out a %s toolset of %s: %s", spec.kind, found.key, err
                )

    toolsets: dict[str, Any] = {}
    for kind, instances in builtin.items():
        if len(instances) == 1:
            toolsets[kind] = {"enabled": True, "config": instances[0][2]}
        elif instances:
            # HolmesGPT rejects duplicate instance names; Service keys are
            # unique, but only as long as the core never repeats a Service.
            names = unique_names([i[0] for i in instances], [i[1] for i in instances], sep="#")
            configs = [{"name": name, **i[2]} for name, i in zip(names, instances, strict=True)]
            toolsets[kind] = {"enabled": True, "config": {"instances": configs}}
    for kind, entries in sorted(other.items()):
        toolsets[kind] = {"enabled": True, "config": _combined(kind, entries)}
    http_entries = [http_entry for _, _, http_entry in http]
    for name, http_entry in zip(_http_names(http, set(toolsets)), http_entries, strict=True):
        toolsets[name] = http_entry
    if not toolsets:
        toolsets[PLACEHOLDER_NAME] = _placeholder()
    return {"toolsets": toolsets}


def _kind_name(kind: str) -> str:
    """``kind`` if it can name a HolmesGPT toolset (``rabbitmq/core``), else an error."""
    if not _KIND.fullmatch(kind) or kind == PLACEHOLDER_NAME:
        raise UnrenderableError(
            f"toolset kind {kind!r} is not a HolmesGPT toolset name (lowercase words "
            f"joined by '/', like rabbitmq/core, or one word, like victorialogs)"
        )
    return kind


def _other_config(spec: ToolsetSpec) -> dict[str, Any]:
    config = plain_config(spec.config)
    if not isinstance(config, dict):
        raise UnrenderableError("config is not a mapping")
    if spec.combine_key and not isinstance(config.get(spec.combine_key), list):
        raise UnrenderableError(f"config.{spec.combine_key} (its combine_key) is not a list")
    return config


def _combined(kind: str, configs: list[tuple[str, ToolsetSpec, dict[str, Any]]]) -> dict[str, Any]:
    """One config for every service of a kind HolmesGPT does not wrap in ``multi_instance``.

    With a ``combine_key`` the lists under that key are joined (the first
    service's other keys win); without one, HolmesGPT can use only one
    service of the kind: the first, the others logged as left out.
    """
    first_key, first_spec, first = configs[0]
    key = first_spec.combine_key
    if key and all(spec.combine_key == key for _, spec, _ in configs):
        return {**first, key: [item for _, _, config in configs for item in config[key]]}
    for service, _, _ in configs[1:]:
        log.warning(
            "holmesgpt: leaving out the %s toolset of %s: HolmesGPT takes one %s toolset and "
            "%s has it (a plugin can join several with ToolsetSpec.combine_key)",
            kind,
            service,
            kind,
            first_key,
        )
    return first


def _builtin_config(spec: ToolsetSpec) -> dict[str, Any]:
    config = plain_config(spec.config)
    if not isinstance(config, dict):
        raise UnrenderableError("config is not a mapping")
    # "name" is the instance routing key and "instances" switches the wrapper
    # to multi-instance mode: neither may come from a single server's config.
    for reserved in ("name", "instances"):
        if reserved in config:
            raise UnrenderableError(f"config key {reserved!r} is reserved")
    url = config.get(BUILTIN_URL_KEYS[spec.kind])
    if not isinstance(url, str) or not url:
        raise UnrenderableError(f"config has no {BUILTIN_URL_KEYS[spec.kind]}")
    return config


def _http_entry(found: Discovered, spec: ToolsetSpec) -> dict[str, Any]:
    config = plain_config(spec.config)
    _check_http_config(config)
    service = found.service
    description = spec.description or f"HTTP API of the {found.type} service {service.key}"
    instructions = spec.llm_instructions or (
        f"Read-only HTTP API of the {found.type} service {service.key}, base URL {found.endpoint}."
    )
    # Every key is always present, whatever the Service says: annotation
    # values can change text, never the shape of the document.
    return {
        "type": HTTP_KIND,
        "enabled": True,
        "description": clean_text(description),
        "llm_instructions": clean_text(instructions),
        "config": config,
    }


def _check_http_config(config: Any) -> None:
    """Reject what HolmesGPT 0.45's ``HttpToolset`` prerequisite check would reject."""
    endpoints = config.get("endpoints") if isinstance(config, dict) else None
    if not isinstance(endpoints, list) or not endpoints:
        raise UnrenderableError("HTTP toolset without endpoints")
    _known_keys(config, _HTTP_CONFIG_KEYS, "config")
    for endpoint in endpoints:
        if isinstance(endpoint, dict):
            _known_keys(endpoint, _HTTP_ENDPOINT_KEYS, "config.endpoints[]")
            if isinstance(endpoint.get("auth"), dict):
                _known_keys(endpoint["auth"], _HTTP_AUTH_KEYS, "config.endpoints[].auth")
        hosts = endpoint.get("hosts") if isinstance(endpoint, dict) else None
        if not isinstance(hosts, list) or not hosts:
            raise UnrenderableError("HTTP endpoint without hosts")
        for host in hosts:
            problem = host_pattern_problem(host)
            if problem:
                raise UnrenderableError(problem)
        methods = endpoint.get("methods", ["GET"])
        if not isinstance(methods, list) or not all(
            isinstance(m, str) and m.upper() in _METHODS for m in methods
        ):
            raise UnrenderableError(f"HTTP methods {methods!r} not allowed")
        paths = endpoint.get("paths", ["*"])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise UnrenderableError(f"HTTP paths {paths!r} are not strings")


def _known_keys(mapping: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise UnrenderableError(
            f"{where} has keys HolmesGPT's HTTP toolset does not know: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )


def host_pattern_problem(entry: object) -> str | None:
    """Why HolmesGPT 0.45 would reject ``entry`` as an HTTP host pattern, or ``None``.

    The rules of its ``EndpointConfig.hosts``: optional ``http://``/``https://``,
    a host (a leading ``*.`` is the only wildcard, IPv6 in brackets), and an
    optional ``:port`` (1-65535 or ``*``).
    """
    if not isinstance(entry, str) or not entry.strip():
        return f"host pattern {entry!r} is empty"
    rest = entry.strip()
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        if scheme.lower() not in _SCHEMES:
            return f"host pattern {entry!r}: scheme must be http or https"
    for separator in "/?#":
        rest = rest.split(separator, 1)[0]
    rest = rest.rsplit("@", 1)[-1]
    port: str | None = None
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            return f"host pattern {entry!r}: malformed IPv6 host"
        port = after[1:] if after else None
    elif rest.count(":") == 1:
        host, _, port = rest.partition(":")
    else:
        host = rest
    if not host:
        return f"host pattern {entry!r} has no host"
    if "*" in host and not host.startswith("*."):
        return f"host pattern {entry!r}: only a leading '*.' wildcard is allowed"
    if port not in (None, "*") and not (
        port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
    ):
        return f"host pattern {entry!r}: port must be 1-65535 or '*'"
    return None


def _segment(value: str, limit: int) -> str:
    """``value`` as lowercase letters, digits and single dashes, at most ``limit`` long."""
    return _NOT_NAME_CHAR.sub("-", value.lower()).strip("-")[:limit].strip("-")


def _http_names(
    http: list[tuple[Discovered, int, dict[str, Any]]], reserved: Set[str] = frozenset()
) -> list[str]:
    """Distinct, stable toolset names ``<type>/<namespace>/<service>`` for the HTTP entries.

    The readable name is used when it is exact (segments already valid, short
    enough) and its HolmesGPT tool name is unique in the document. Otherwise
    namespace and service are shortened to fit and a hash of the Service's
    identity is appended. Only Services whose tool names would collide get the
    hash, so a name changes only when such a collision appears or disappears.
    """
    readable: list[str] = []
    hashed: list[str] = []
    exact: list[bool] = []
    for found, count, _ in http:
        service = found.service
        kind = _segment(found.type, _MAX_TYPE) or "custom"
        namespace = _segment(service.namespace, 63)
        svc = _segment(service.name, 63) + (f"-{count}" if count > 1 else "")
        name = f"{kind}/{namespace}/{svc}"
        readable.append(name)
        exact.append(
            bool(namespace)
            and namespace == service.namespace
            and _segment(service.name, 63) == service.name
            and len(name) <= _MAX_HTTP_NAME
        )
        # Room for "<kind>/<ns>/<svc>-<hash>": split what is left fairly.
        room = _MAX_HTTP_NAME - _HASH_SUFFIX - len(kind) - 2
        ns_room = max(room - len(svc), room // 2)
        short_ns = namespace[:ns_room].strip("-")
        short_svc = svc[: room - len(short_ns)].strip("-")
        digest = short_hash(found.type, service.namespace, service.name, str(count))
        hashed.append(f"{kind}/{short_ns}/{short_svc}-{digest}")

    clashes = Counter(_tool_name(name) for name in readable)
    names = [
        name if ok and clashes[_tool_name(name)] == 1 else alt
        for name, alt, ok in zip(readable, hashed, exact, strict=True)
    ]
    # A hashed name meeting another name (or a plugin's toolset kind, in
    # ``reserved``) is astronomically unlikely, but a duplicate key would
    # silently drop a toolset, so make sure.
    taken: set[str] = set()
    for i, name in enumerate(names):
        while _tool_name(names[i]) in taken or names[i] in reserved:
            names[i] = f"{name[: _MAX_HTTP_NAME - _HASH_SUFFIX]}-{short_hash(names[i], str(i))}"
        taken.add(_tool_name(names[i]))
    return names


def _tool_name(toolset_name: str) -> str:
    # HolmesGPT 0.45 HttpToolset._derive_tool_name, minus the "_request" suffix.
    return toolset_name.replace("/", "_").replace("-", "_")


#: Built-ins are plugins like any other and declare the API they use.
DYNTOOLSET_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_renderers() -> list[type[Renderer]]:
    """The ``holmesgpt`` renderer."""
    return [HolmesGPTRenderer]
