"""Finding, loading and validating plugins.

Two phases, as flake8 does it: :func:`find_plugins` lists the entry points of
the ``dyntoolset`` group from installed distribution metadata (sorted,
de-duplicated, clashes reported with both sides named) without importing
anything; :func:`load_plugins` imports each one, registers it with a fresh
pluggy manager, calls its hooks one plugin at a time and validates the
classes it returns. A plugin that fails at any step is logged with its
distribution and reason and skipped; the rest keep working.

The built-in detectors and renderers are found the same way, through
dyntoolset's own ``[project.entry-points.dyntoolset]`` table. There are no
module-level registries: every call builds a new, independent
:class:`PluginSet`, which embedders can extend in code with
:meth:`PluginSet.add_detector` / :meth:`PluginSet.add_renderer`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import attrs
import pluggy

from dyntoolset import hookspecs, urlpolicy
from dyntoolset.detector import Detector
from dyntoolset.errors import DuplicateNameError, PluginLoadError
from dyntoolset.hookspecs import PLUGIN_API_ATTRIBUTE, PLUGIN_API_VERSION
from dyntoolset.model import HEALTH_CHECK_KINDS, OVERRIDES_KEY
from dyntoolset.prefilter import Prefilter
from dyntoolset.renderer import Renderer
from dyntoolset.urlpolicy import health_path_problem

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dyntoolset"
#: Comma-separated distribution names; when set, only these (and dyntoolset
#: itself, which carries the built-ins) load.
LOAD_PLUGINS_ENV = "DYNTOOLSET_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = "dyntoolset"

DATA_KEY_PATTERN = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")

Kind = Literal["detector", "renderer"]


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name (``Dyntoolset_Loki`` → ``dyntoolset-loki``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@attrs.frozen
class PluginSpec:
    """An entry point found in distribution metadata (not imported yet)."""

    name: str
    value: str  # the module to import
    distribution: str
    dist_version: str

    @property
    def origin(self) -> str:
        return f"{self.distribution} {self.dist_version} (entry point {self.name} = {self.value})"


@attrs.frozen
class ExtensionInfo:
    """A detector or renderer class with its provenance."""

    kind: Kind
    name: str
    cls: type[Any]
    plugin: str  # the plugin (entry point / module) that registered it
    distribution: str
    dist_version: str
    #: The plugin API its module declared (``DYNTOOLSET_PLUGIN_API``); empty
    #: for classes registered in code, which are built against the running core.
    api_version: str = ""

    @property
    def version(self) -> str:
        return str(self.cls.version)

    @property
    def description(self) -> str:
        return str(self.cls.description)

    @property
    def origin(self) -> str:
        return f"{self.distribution} {self.dist_version}".strip()


@attrs.define
class PluginSet:
    """The detectors and renderers available to one program, and what failed."""

    manager: pluggy.PluginManager
    detectors: dict[str, ExtensionInfo] = attrs.Factory(dict)
    renderers: dict[str, ExtensionInfo] = attrs.Factory(dict)
    failures: list[PluginLoadError] = attrs.Factory(list)

    @property
    def distributions(self) -> list[tuple[str, str]]:
        """``(name, version)`` of each installed distribution that contributed a class.

        Sorted; classes added in code or from a path (no distribution metadata,
        so no version) are left out.
        """
        infos = [*self.detectors.values(), *self.renderers.values()]
        return sorted({(i.distribution, i.dist_version) for i in infos if i.dist_version})

    @property
    def failed(self) -> list[str]:
        """Names of plugins that failed to load or validate."""
        return sorted({f.plugin for f in self.failures})

    def add_detector(
        self, cls: type[Detector[Any]], *, plugin: str = "code", distribution: str = "<code>"
    ) -> ExtensionInfo:
        """Register a detector class in code, without an entry point.

        The counterpart of the requirements' ``RegisterCustomDetector`` (BR-TOOLSET-037). Raises
        :class:`PluginLoadError` if the class is invalid or its name is taken.
        """
        return self._add("detector", cls, plugin, distribution, "")

    def installed_only(self) -> PluginSet:
        """A copy without what ``plugin.path`` added (detectors and failures), with a
        plugin manager of its own.

        What a configuration reload starts from: installed plugins are not
        imported and registered again, a changed or removed ``plugin.path``
        is loaded afresh, and a reload that fails leaves this set untouched.
        """
        copy = PluginSet(_new_manager())
        copy.detectors = {
            name: info
            for name, info in self.detectors.items()
            if not info.distribution.startswith(_PATH_ORIGIN)
        }
        copy.renderers = dict(self.renderers)
        copy.failures = [f for f in self.failures if not f.distribution.startswith(_PATH_ORIGIN)]
        return copy

    def load_path_detector(self, name: str, path: str) -> bool:
        """Load detector ``name`` from a file (``detectors.<name>.plugin.path``) into this set.

        Returns whether it is now available; a failure is logged and recorded
        in :attr:`failures`. See :func:`load_path_plugin`.
        """
        return load_path_plugin(self, name, path)

    def add_renderer(
        self, cls: type[Renderer], *, plugin: str = "code", distribution: str = "<code>"
    ) -> ExtensionInfo:
        """Register a renderer class in code, without an entry point."""
        return self._add("renderer", cls, plugin, distribution, "")

    def _add(
        self,
        kind: Kind,
        cls: Any,
        plugin: str,
        distribution: str,
        dist_version: str,
        api_version: str = "",
    ) -> ExtensionInfo:
        problem = validate_extension(kind, cls)
        name = getattr(cls, "name", "?")
        if problem:
            raise PluginLoadError(
                str(name) if isinstance(name, str) else plugin, distribution, problem
            )
        table = self.detectors if kind == "detector" else self.renderers
        info = ExtensionInfo(kind, name, cls, plugin, distribution, dist_version, api_version)
        if name in table:
            raise DuplicateNameError(kind, name, _side(table[name]), _side(info))
        if kind == "renderer":
            for other in table.values():
                if other.cls.data_key == cls.data_key:
                    raise DuplicateNameError(
                        "renderer data key", cls.data_key, _side(other), _side(info)
                    )
        table[name] = info
        log.info(
            "registered %s %r %s from %s (plugin %s)",
            kind,
            name,
            info.version,
            info.origin or distribution,
            plugin,
        )
        return info


def _side(info: ExtensionInfo) -> str:
    return f"{info.origin} (plugin {info.plugin})"


# -- Phase 1: find --------------------------------------------------------------


def find_plugins(
    distributions: Iterable[importlib.metadata.Distribution] | None = None,
) -> tuple[list[PluginSpec], list[PluginLoadError]]:
    """Entry points of the ``dyntoolset`` group, sorted by name, without importing them.

    A distribution seen twice on ``sys.path`` counts once (the first wins,
    as for imports). Two *different* distributions claiming one entry-point
    name is a :class:`DuplicateNameError` naming both; neither is loaded,
    since there is no way to know which the operator meant.
    """
    seen_dists: set[str] = set()
    by_name: dict[str, list[PluginSpec]] = {}
    dists = importlib.metadata.distributions() if distributions is None else distributions
    for dist in dists:
        dist_name = normalize(dist.metadata["Name"] or "")
        if not dist_name or dist_name in seen_dists:
            continue
        seen_dists.add(dist_name)
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                spec = PluginSpec(ep.name, ep.value, dist_name, dist.version or "")
                by_name.setdefault(ep.name, []).append(spec)
    specs: list[PluginSpec] = []
    errors: list[PluginLoadError] = []
    for name in sorted(by_name):
        claims = sorted(by_name[name], key=lambda s: s.distribution)
        if len(claims) == 1:
            specs.append(claims[0])
        else:
            errors.append(DuplicateNameError("plugin", name, claims[0].origin, claims[1].origin))
    return specs, errors


def pinned_distributions(
    environ: dict[str, str] | os._Environ[str] = os.environ,
) -> set[str] | None:
    """The distributions ``DYNTOOLSET_LOAD_PLUGINS`` allows, or ``None`` if unset."""
    raw = environ.get(LOAD_PLUGINS_ENV)
    if raw is None:
        return None
    return {normalize(n.strip()) for n in raw.split(",") if n.strip()} | {BUILTIN_DISTRIBUTION}


# -- Phase 2: load and validate ------------------------------------------------


def validate_extension(kind: Kind, cls: Any) -> str | None:
    """Why ``cls`` is not a valid detector/renderer class, or ``None`` if it is.

    Besides the class attributes, the class must be constructible without
    arguments and a detector's ``Settings()`` must build from its defaults
    (a detector with no ``config:`` block runs with them).
    """
    base: type[Any] = Detector if kind == "detector" else Renderer
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        return f"{cls!r} is not a subclass of dyntoolset.{base.__name__}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or urlpolicy.dns1035_label_problem(name):
        return (
            f"{cls.__qualname__}.name must be lowercase letters, digits and '-' "
            f"(at most 63, starting with a letter), got {name!r}"
        )
    for attr in ("version", "description"):
        if not isinstance(getattr(cls, attr, None), str):
            return f"{cls.__qualname__}.{attr} must be a string"
    method = "detect" if kind == "detector" else "render"
    if getattr(cls, method) is getattr(base, method):
        return f"{cls.__qualname__} does not implement {method}()"
    if issubclass(cls, Detector):
        if not attrs.has(cls.Settings):
            return f"{cls.__qualname__}.Settings must be an attrs class"
        if type(cls.default_priority) is not int or cls.default_priority < 0:
            return f"{cls.__qualname__}.default_priority must be a non-negative int"
        problem = (
            health_path_problem(cls.health_path)
            if isinstance(cls.health_path, str)
            else ("health_path must be a string")
        )
        if problem:
            return f"{cls.__qualname__}: {problem}"
        if cls.health_check not in HEALTH_CHECK_KINDS:
            return (
                f"{cls.__qualname__}.health_check must be one of "
                f"{', '.join(map(repr, HEALTH_CHECK_KINDS))}, got {cls.health_check!r}"
            )
        if cls.prefilter is not None and not isinstance(cls.prefilter, Prefilter):
            return (
                f"{cls.__qualname__}.prefilter must be a dyntoolset.plugin.Prefilter or None, "
                f"got {cls.prefilter!r}"
            )
    else:
        key = getattr(cls, "data_key", None)
        if not isinstance(key, str) or not DATA_KEY_PATTERN.match(key):
            return f"{cls.__qualname__}.data_key must be a valid ConfigMap key, got {key!r}"
        if key == OVERRIDES_KEY:
            return (
                f"{cls.__qualname__}.data_key {key!r} belongs to the operator and is never "
                f"generated"
            )
    # Built now so a broken plugin is skipped at load, like any other invalid
    # one, instead of failing every configuration or the engine later.
    try:
        cls()
    except Exception as exc:  # noqa: BLE001 - reported as the plugin's failure
        return f"{cls.__qualname__}() raised {exc!r}; it must be constructible without arguments"
    if issubclass(cls, Detector):
        try:
            cls.Settings()
        except Exception as exc:  # noqa: BLE001 - reported as the plugin's failure
            return (
                f"{cls.__qualname__}.Settings() raised {exc!r}; every setting needs a "
                f"working default"
            )
    return None


#: The ``distribution`` of a detector loaded from ``plugin.path`` starts with this.
_PATH_ORIGIN = "path:"


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def api_version_problem(declared: object) -> str | None:
    """Why a plugin declaring plugin API ``declared`` cannot load here, or ``None``.

    Compatible means the same major version and a minor version no newer than
    :data:`~dyntoolset.hookspecs.PLUGIN_API_VERSION`'s: a minor version only
    adds names, so a plugin built for ``2.0`` runs on ``2.1``, but one built
    for ``2.1`` may use a name ``2.0`` lacks.
    """
    ours = _api_parts(PLUGIN_API_VERSION)
    assert ours is not None  # our own constant
    if declared is None:
        return (
            f"declares no plugin API version: add {PLUGIN_API_ATTRIBUTE} = "
            f'"{PLUGIN_API_VERSION}" next to its hook implementations (the version of '
            f"dyntoolset.plugin.PLUGIN_API_VERSION it was written for)"
        )
    theirs = _api_parts(declared)
    if theirs is None:
        return f"{PLUGIN_API_ATTRIBUTE} must be a string 'MAJOR' or 'MAJOR.MINOR', got {declared!r}"
    if theirs[0] != ours[0] or theirs[1] > ours[1]:
        return (
            f"built for plugin API {declared}, but this dyntoolset provides plugin API "
            f"{PLUGIN_API_VERSION} (compatible: {ours[0]}.0 to {PLUGIN_API_VERSION}); install "
            f"a release of the plugin built for plugin API {ours[0]}, or a dyntoolset that "
            f"provides {declared}"
        )
    return None


def _api_parts(value: object) -> tuple[int, int] | None:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,4}(\.[0-9]{1,4})?", value):
        return None
    major, _, minor = value.partition(".")
    return int(major), int(minor or 0)


def _collect(
    plugin_set: PluginSet, plugin_name: str, distribution: str, version: str, api_version: str
) -> None:
    """Call one plugin's hooks and register what they return.

    Hooks are called one implementation at a time (rather than through
    ``manager.hook``) so a failing plugin cannot hide the others' results and
    every class is attributed to the plugin that returned it.
    """
    for kind, hook in (
        ("detector", plugin_set.manager.hook.register_detectors),
        ("renderer", plugin_set.manager.hook.register_renderers),
    ):
        for impl in hook.get_hookimpls():
            if impl.plugin_name != plugin_name:
                continue
            try:
                classes = impl.function()
                if not isinstance(classes, (list, tuple)):
                    raise TypeError(f"{hook.name}() must return a list of classes, got {classes!r}")
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not stop the others
                _fail(
                    plugin_set,
                    PluginLoadError(plugin_name, distribution, f"{hook.name}() raised {exc!r}"),
                )
                continue
            for cls in classes:
                try:
                    plugin_set._add(kind, cls, plugin_name, distribution, version, api_version)  # type: ignore[arg-type]
                except PluginLoadError as exc:
                    _fail(plugin_set, exc)


def _fail(plugin_set: PluginSet, error: PluginLoadError) -> None:
    log.error("skipping plugin: %s", error)
    plugin_set.failures.append(error)


def load_plugins(
    specs: Sequence[PluginSpec] | None = None,
    *,
    only: Iterable[str] | None = None,
    blocked: Iterable[str] = (),
    environ: dict[str, str] | os._Environ[str] = os.environ,
    importer: Callable[[str], ModuleType] = importlib.import_module,
) -> PluginSet:
    """Find (unless ``specs`` is given), import, validate and register plugins.

    ``only`` limits loading to those distributions (``DYNTOOLSET_LOAD_PLUGINS``
    is used when ``only`` is ``None``); ``blocked`` names distributions never
    to load. Never raises for a bad plugin: see :attr:`PluginSet.failures`.
    """
    plugin_set = PluginSet(manager=_new_manager())
    if specs is None:
        specs, errors = find_plugins()
        for error in errors:
            _fail(plugin_set, error)
    allowed = (
        {normalize(n) for n in only} | {BUILTIN_DISTRIBUTION}
        if only is not None
        else (pinned_distributions(environ))
    )
    blocked_set = {normalize(n) for n in blocked}
    found = {spec.distribution for spec in specs}
    for missing in sorted((allowed or set()) - found - {BUILTIN_DISTRIBUTION}):
        _fail(
            plugin_set,
            PluginLoadError(
                missing,
                missing,
                f"pinned in {LOAD_PLUGINS_ENV} but no installed distribution of that name has "
                f"dyntoolset plugins (found: {', '.join(sorted(found)) or 'none'})",
            ),
        )
    for spec in specs:
        if (allowed is not None and spec.distribution not in allowed) or (
            spec.distribution in blocked_set
        ):
            log.info("not loading plugin %s from %s (not pinned)", spec.name, spec.distribution)
            continue
        try:
            module = _load_entry_point(spec.value, importer)
        except Exception as exc:  # noqa: BLE001 - any import error is the plugin's failure
            _fail(
                plugin_set, PluginLoadError(spec.name, spec.distribution, f"import failed: {exc!r}")
            )
            continue
        register(plugin_set, module, spec.name, spec.distribution, spec.dist_version)
    return plugin_set


def _load_entry_point(value: str, importer: Callable[[str], ModuleType]) -> object:
    """The object an entry-point value names: ``module`` or ``module:attr.attr``."""
    module_name, _, attributes = value.partition(":")
    target: object = importer(module_name.strip())
    for attribute in filter(None, attributes.strip().split(".")):
        target = getattr(target, attribute)
    return target


def register(
    plugin_set: PluginSet, module: object, name: str, distribution: str, version: str = ""
) -> None:
    """Register a plugin object (a module with hook implementations) and collect its classes.

    The object must declare a compatible plugin API version
    (``DYNTOOLSET_PLUGIN_API``, see :func:`api_version_problem`); otherwise it
    is skipped with a :class:`PluginLoadError` naming both versions.
    """
    declared = getattr(module, PLUGIN_API_ATTRIBUTE, None)
    problem = api_version_problem(declared)
    if problem:
        _fail(plugin_set, PluginLoadError(name, distribution, problem))
        return
    try:
        plugin_set.manager.register(module, name=name)
        plugin_set.manager.check_pending()
    except (ValueError, pluggy.PluginValidationError) as exc:
        if plugin_set.manager.is_registered(module):
            plugin_set.manager.unregister(module)
        _fail(
            plugin_set, PluginLoadError(name, distribution, f"invalid hook implementation: {exc}")
        )
        return
    _collect(plugin_set, name, distribution, version, str(declared))


def load_path_plugin(plugin_set: PluginSet, detector_name: str, path: str) -> bool:
    """Load a detector from a file path (``detectors.<name>.plugin.path``).

    ``path`` is a ``.py`` file, a package directory, or a compiled extension
    module (``.so``/``.pyd`` built for this Python). It must register a
    detector named ``detector_name``. Failures are logged and recorded;
    returns whether the detector is now available.
    """
    origin = f"{_PATH_ORIGIN}{path}"
    try:
        module = _import_path(detector_name, Path(path))
    except Exception as exc:  # noqa: BLE001 - whatever the file does is the plugin's failure
        _fail(plugin_set, PluginLoadError(detector_name, origin, f"cannot load {path}: {exc}"))
        return False
    register(plugin_set, module, f"path:{detector_name}", origin)
    if detector_name not in plugin_set.detectors:
        _fail(
            plugin_set,
            PluginLoadError(
                detector_name,
                origin,
                f"{path} does not register a detector named {detector_name!r}",
            ),
        )
        return False
    return True


def _import_path(detector_name: str, path: Path) -> ModuleType:
    if not path.exists():
        raise FileNotFoundError("no such file or directory")
    module_name = "dyntoolset_path_plugin_" + detector_name.replace("-", "_")
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            module_name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    elif path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(module_name, path)
    else:
        # An extension module's init function is named after the file's stem.
        stem = path.name.split(".", 1)[0]
        if not stem.isidentifier():
            raise ImportError(f"extension module name {stem!r} is not a Python identifier")
        loader = importlib.machinery.ExtensionFileLoader(stem, str(path))
        spec = importlib.util.spec_from_file_location(stem, path, loader=loader)
    if spec is None or spec.loader is None:
        raise ImportError("not a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before running so the package's relative imports resolve.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module
