"""Plugin discovery, loading and validation, with fake installed distributions."""

from __future__ import annotations

import logging
import textwrap

import attrs
import pytest

from dyntoolset import hookspecs
from dyntoolset.config import load_config
from dyntoolset.errors import DuplicateNameError, PluginLoadError
from dyntoolset.plugin import PLUGIN_API_VERSION
from dyntoolset.plugins import find_plugins, load_path_plugin, load_plugins, pinned_distributions
from dyntoolset.testing import fake_distribution, make_plugin_set, on_sys_path
from tests.helpers import BetaDetector, LabelDetector, ListRenderer

BUILTIN_DETECTORS = ["custom", "elasticsearch", "grafana", "jaeger", "prometheus"]
BUILTIN_RENDERERS = ["holmesgpt", "kubernaut"]


def detector_module(name: str, detector: str, priority: int = 50) -> str:
    return textwrap.dedent(
        f"""
        from dyntoolset.plugin import Detector, hookimpl

        DYNTOOLSET_PLUGIN_API = "2"

        class D(Detector):
            name = {detector!r}
            version = "1.2.3"
            description = "fake {detector}"
            default_priority = {priority}

            def detect(self, service, ctx):
                return None

        @hookimpl
        def register_detectors():
            return [D]
        """
    )


def test_builtins_come_from_the_dyntoolset_distribution():
    plugins = load_plugins(only=[])
    assert sorted(plugins.detectors) == BUILTIN_DETECTORS
    assert sorted(plugins.renderers) == BUILTIN_RENDERERS
    assert plugins.failures == []
    for info in [*plugins.detectors.values(), *plugins.renderers.values()]:
        assert info.distribution == "dyntoolset"
        assert info.dist_version == "0.1.0"


def test_entry_points_are_found_sorted_from_metadata(tmp_path):
    dists = [
        fake_distribution(tmp_path / "b", "zeta-tools", {"zeta": "zeta_mod"}),
        fake_distribution(tmp_path / "a", "Alpha_Tools", {"alpha": "alpha_mod", "aardvark": "ard"}),
    ]
    specs, errors = find_plugins(dists)
    assert errors == []
    assert [(s.name, s.value, s.distribution) for s in specs] == [
        ("aardvark", "ard", "alpha-tools"),
        ("alpha", "alpha_mod", "alpha-tools"),
        ("zeta", "zeta_mod", "zeta-tools"),
    ]


def test_same_distribution_twice_on_the_path_counts_once(tmp_path):
    one = fake_distribution(tmp_path / "a", "loki-detector", {"loki": "loki_mod"})
    two = fake_distribution(tmp_path / "b", "loki-detector", {"loki": "loki_mod"}, version="2.0")
    specs, errors = find_plugins([one, two])
    assert errors == [] and [s.dist_version for s in specs] == ["1.0"]


def test_two_distributions_claiming_one_name_is_an_error_naming_both(tmp_path):
    dists = [
        fake_distribution(tmp_path / "a", "loki-one", {"loki": "loki_one"}),
        fake_distribution(tmp_path / "b", "loki-two", {"loki": "loki_two"}),
    ]
    specs, errors = find_plugins(dists)
    assert specs == []
    assert len(errors) == 1 and isinstance(errors[0], DuplicateNameError)
    message = str(errors[0])
    assert "loki-one 1.0 (entry point loki = loki_one)" in message
    assert "loki-two 1.0 (entry point loki = loki_two)" in message


def test_loading_registers_and_logs_each_detector(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    dist = fake_distribution(
        tmp_path,
        "loki-detector",
        {"loki": "fake_loki"},
        modules={"fake_loki": detector_module("x", "loki")},
    )
    specs, _ = find_plugins([dist])
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={})
    info = plugins.detectors["loki"]
    assert (info.distribution, info.dist_version, info.version, info.plugin) == (
        "loki-detector",
        "1.0",
        "1.2.3",
        "loki",
    )
    assert "registered detector 'loki' 1.2.3 from loki-detector 1.0 (plugin loki)" in caplog.text
    # What dynamic_toolset_plugin_info exports: each distribution once, with its version.
    assert plugins.distributions == [("loki-detector", "1.0")]


def test_import_failure_is_logged_and_the_others_still_load(tmp_path, caplog):
    dists = [
        fake_distribution(
            tmp_path,
            "bad-plugin",
            {"bad": "bad_mod"},
            modules={"bad_mod": "raise ImportError('missing lib')"},
        ),
        fake_distribution(
            tmp_path,
            "good-plugin",
            {"good": "good_mod"},
            modules={"good_mod": detector_module("g", "good")},
        ),
    ]
    specs, _ = find_plugins(dists)
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={})
    assert list(plugins.detectors) == ["good"]
    assert [(f.plugin, f.distribution) for f in plugins.failures] == [("bad", "bad-plugin")]
    assert "import failed: ImportError('missing lib')" in plugins.failures[0].reason
    assert "skipping plugin: plugin 'bad' from bad-plugin: import failed" in caplog.text


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "from dyntoolset.plugin import hookimpl\nDYNTOOLSET_PLUGIN_API = '2'\n@hookimpl\ndef register_detectors():\n    return [object]",
            "is not a subclass of dyntoolset.Detector",
        ),
        (detector_module("x", "Bad_Name"), "D.name must be lowercase letters, digits and '-'"),
        (
            detector_module("x", "ok").replace(
                "    def detect(self, service, ctx):\n        return None\n", ""
            ),
            "D does not implement detect()",
        ),
        (
            detector_module("x", "ok").replace("default_priority = 50", 'default_priority = "1"'),
            "D.default_priority must be a non-negative int",
        ),
        (
            detector_module("x", "ok").replace('version = "1.2.3"', "version = 1"),
            "D.version must be a string",
        ),
        (
            detector_module("x", "ok").replace(
                "default_priority = 50", 'default_priority = 1\n    health_path = "x"'
            ),
            "D: health path 'x' must start with '/'",
        ),
        (
            "from dyntoolset.plugin import hookimpl\nDYNTOOLSET_PLUGIN_API = '2'\n@hookimpl\ndef register_detectors():\n    raise KeyError('k')",
            "register_detectors() raised KeyError('k')",
        ),
        (
            "from dyntoolset.plugin import hookimpl\nDYNTOOLSET_PLUGIN_API = '2'\n@hookimpl\ndef register_detectors():\n    return 'x'",
            "register_detectors() must return a list of classes",
        ),
        (
            "from dyntoolset.plugin import hookimpl\nDYNTOOLSET_PLUGIN_API = '2'\n@hookimpl\ndef register_detector():\n    return []",
            "invalid hook implementation: unknown hook 'register_detector'",
        ),
        (
            "from dyntoolset.plugin import hookimpl\nDYNTOOLSET_PLUGIN_API = '2'\n@hookimpl\ndef register_detectors(flag):\n    return []",
            "invalid hook implementation",
        ),
        (
            "from dyntoolset.plugin import Renderer, hookimpl\nDYNTOOLSET_PLUGIN_API = '2'\nclass R(Renderer):\n    name='r'\n    data_key='a/b'\n"
            "    def render(self, d): return ''\n@hookimpl\ndef register_renderers():\n    return [R]",
            "R.data_key must be a valid ConfigMap key, got 'a/b'",
        ),
    ],
)
def test_invalid_plugins_are_skipped_with_a_reason(tmp_path, source, reason):
    dist = fake_distribution(
        tmp_path, "broken-plugin", {"broken": "broken_mod"}, modules={"broken_mod": source}
    )
    specs, _ = find_plugins([dist])
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={})
    assert plugins.detectors == {} and plugins.renderers == {}
    assert len(plugins.failures) == 1
    assert plugins.failures[0].distribution == "broken-plugin"
    assert reason in plugins.failures[0].reason


def test_a_detector_name_claimed_by_two_plugins_names_both(tmp_path):
    dists = [
        fake_distribution(
            tmp_path, "one", {"one": "one_mod"}, modules={"one_mod": detector_module("a", "loki")}
        ),
        fake_distribution(
            tmp_path, "two", {"two": "two_mod"}, modules={"two_mod": detector_module("b", "loki")}
        ),
    ]
    specs, _ = find_plugins(dists)
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={})
    assert plugins.detectors["loki"].distribution == "one"
    assert len(plugins.failures) == 1
    assert str(plugins.failures[0]).startswith(
        "detector name 'loki' is claimed by both one 1.0 (plugin one) and two 1.0 (plugin two)"
    )


def test_pinning_limits_distributions_but_keeps_builtins(tmp_path):
    dists = [
        fake_distribution(
            tmp_path, "one", {"one": "one_mod"}, modules={"one_mod": detector_module("a", "one")}
        ),
        fake_distribution(
            tmp_path, "two", {"two": "two_mod"}, modules={"two_mod": detector_module("b", "two")}
        ),
    ]
    specs, _ = find_plugins(dists)
    with on_sys_path(tmp_path):
        assert list(load_plugins(specs, environ={"DYNTOOLSET_LOAD_PLUGINS": "Two"}).detectors) == [
            "two"
        ]
        assert list(load_plugins(specs, environ={"DYNTOOLSET_LOAD_PLUGINS": ""}).detectors) == []
        assert list(load_plugins(specs, environ={}, blocked=["one"]).detectors) == ["two"]
        assert list(load_plugins(specs, only=["one"]).detectors) == ["one"]
    assert pinned_distributions({}) is None
    assert pinned_distributions({"DYNTOOLSET_LOAD_PLUGINS": " a_b , c "}) == {
        "a-b",
        "c",
        "dyntoolset",
    }


def test_pinning_an_empty_list_still_loads_the_builtins(monkeypatch):
    monkeypatch.setenv("DYNTOOLSET_LOAD_PLUGINS", "")
    assert sorted(load_plugins().detectors) == BUILTIN_DETECTORS


def test_detectors_can_be_added_in_code():
    plugins = make_plugin_set(builtin_detectors=False, builtin_renderers=False)
    info = plugins.add_detector(LabelDetector)
    assert (info.name, info.distribution, info.plugin) == ("alpha", "<code>", "code")
    with pytest.raises(DuplicateNameError, match=r"detector name .alpha. is claimed by both"):
        plugins.add_detector(LabelDetector)
    with pytest.raises(PluginLoadError, match=r"is not a subclass of dyntoolset\.Renderer"):
        plugins.add_renderer(BetaDetector)  # type: ignore[arg-type]
    plugins.add_renderer(ListRenderer)
    assert list(plugins.renderers) == ["lines"]


def test_path_plugins_load_from_a_file_or_a_package(tmp_path):
    (tmp_path / "single.py").write_text(detector_module("x", "from-file"))
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from .impl import DYNTOOLSET_PLUGIN_API, register_detectors\n"
    )
    (package / "impl.py").write_text(detector_module("x", "from-package"))
    plugins = make_plugin_set(builtin_detectors=False)
    assert load_path_plugin(plugins, "from-file", str(tmp_path / "single.py"))
    assert load_path_plugin(plugins, "from-package", str(package))
    assert plugins.detectors["from-file"].distribution == f"path:{tmp_path / 'single.py'}"
    assert plugins.failures == []
    # A path is no distribution: never a label value of dynamic_toolset_plugin_info
    # (only the built-in renderers' distribution is listed).
    assert plugins.distributions == [("dyntoolset", "0.1.0")]


@pytest.mark.parametrize(
    ("filename", "content", "reason"),
    [
        ("absent.so", None, "no such file or directory"),
        ("bad-name.so", b"\x7fELF", "extension module name 'bad-name' is not a Python identifier"),
        ("notelf.so", b"garbage", "cannot load"),
        (
            "other.py",
            detector_module("x", "other").encode(),
            "does not register a detector named 'wanted'",
        ),
        ("syntax.py", b"def (", "invalid syntax (syntax.py, line 1)"),
    ],
)
def test_path_plugin_failures_are_recorded_not_raised(tmp_path, filename, content, reason):
    if content is not None:
        (tmp_path / filename).write_bytes(content)
    plugins = make_plugin_set(builtin_detectors=False)
    assert not load_path_plugin(plugins, "wanted", str(tmp_path / filename))
    assert "wanted" not in plugins.detectors
    assert any(reason in f.reason for f in plugins.failures), plugins.failures


def test_every_hookspec_is_documented_and_exercised():
    """Each hook spec has a docstring, a docs page mention and a test (datasette's habit)."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    docs = "".join(p.read_text() for p in (root / "docs").rglob("*.md"))
    tests = "".join(p.read_text() for p in (root / "tests").rglob("*.py"))
    names = [n for n in dir(hookspecs) if n.startswith("register_")]
    assert names == ["register_detectors", "register_renderers"]
    for name in names:
        assert getattr(hookspecs, name).__doc__, name
        assert name in docs, f"{name} is not documented in docs/"
        assert f"def {name}" in tests, f"{name} has no test implementing it"


def test_one_module_behind_two_entry_points_registers_once(tmp_path):
    dists = [
        fake_distribution(
            tmp_path,
            "first",
            {"first": "shared_mod"},
            modules={"shared_mod": detector_module("a", "shared")},
        ),
        fake_distribution(tmp_path, "second", {"second": "shared_mod"}),
    ]
    specs, _ = find_plugins(dists)
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={})
    assert plugins.detectors["shared"].distribution == "first"
    assert [(f.plugin, f.distribution) for f in plugins.failures] == [("second", "second")]
    assert "invalid hook implementation" in plugins.failures[0].reason


class _NeedsSettings(LabelDetector):
    name = "needs-settings"

    @attrs.frozen
    class Settings:
        endpoint: str


class _SettingsRaise(LabelDetector):
    name = "settings-raise"

    @attrs.frozen
    class Settings:
        x: int = 1

        def __attrs_post_init__(self) -> None:
            raise RuntimeError("settings boom")


class _DetectorInitRaises(LabelDetector):
    name = "init-raises"

    def __init__(self) -> None:
        raise RuntimeError("init boom")


class _RendererInitRaises(ListRenderer):
    name = "init-raises"

    def __init__(self) -> None:
        raise RuntimeError("init boom")


@pytest.mark.parametrize(
    ("kind", "cls", "reason"),
    [
        (
            "detector",
            _NeedsSettings,
            '_NeedsSettings.Settings() raised TypeError("_NeedsSettings.Settings.__init__() missing 1 required '
            "positional argument: 'endpoint'\"); every setting needs a working default",
        ),
        (
            "detector",
            _SettingsRaise,
            "_SettingsRaise.Settings() raised RuntimeError('settings boom'); every setting "
            "needs a working default",
        ),
        (
            "detector",
            _DetectorInitRaises,
            "_DetectorInitRaises() raised RuntimeError('init boom'); it must be constructible "
            "without arguments",
        ),
        (
            "renderer",
            _RendererInitRaises,
            "_RendererInitRaises() raised RuntimeError('init boom'); it must be constructible "
            "without arguments",
        ),
    ],
)
def test_classes_that_cannot_be_built_with_defaults_fail_at_load(kind, cls, reason):
    # Found only later, these made every configuration invalid (even no
    # configuration at all: "invalid configuration in defaults") or crashed
    # Engine() with a traceback, so one broken plugin stopped every detector.
    plugins = make_plugin_set(builtin_detectors=False)
    add = plugins.add_detector if kind == "detector" else plugins.add_renderer
    with pytest.raises(PluginLoadError) as info:
        add(cls)
    assert info.value.reason == reason


def test_a_plugin_whose_settings_need_arguments_is_skipped_and_the_rest_run(tmp_path):
    source = detector_module("bad", "needs-config") + textwrap.dedent(
        """
        import attrs

        @attrs.frozen
        class Settings:
            endpoint: str

        D.Settings = Settings
        """
    )
    dist = fake_distribution(
        tmp_path, "dt-needs", {"bad": "dt_needs_mod"}, modules={"dt_needs_mod": source}
    )
    builtins = [s for s in find_plugins()[0] if s.distribution == "dyntoolset"]
    (spec,), _ = find_plugins([dist])
    with on_sys_path(tmp_path):
        plugins = load_plugins([spec, *builtins], only=["dt-needs"])
    assert "needs-config" not in plugins.detectors
    assert sorted(plugins.detectors) == BUILTIN_DETECTORS
    assert [f.plugin for f in plugins.failures] == ["needs-config"]
    config = load_config(None, plugins)  # the others still run, with the defaults
    assert sorted(config.detectors) == BUILTIN_DETECTORS


def test_entry_points_may_name_an_object_in_a_module(tmp_path):
    # 'module:object' is the standard entry-point form (pluggy's own loader
    # accepts it); it used to fail with "No module named 'x_mod:plugin'".
    source = "import types\n\nplugin = types.SimpleNamespace()\n" + detector_module("x", "obj")
    source += "\nplugin.register_detectors = register_detectors\n"
    source += "plugin.DYNTOOLSET_PLUGIN_API = DYNTOOLSET_PLUGIN_API\n"
    dists = [
        fake_distribution(
            tmp_path, "obj-plugin", {"obj": "obj_mod:plugin"}, modules={"obj_mod": source}
        ),
        fake_distribution(tmp_path, "typo-plugin", {"typo": "obj_mod:nope"}, modules={}),
    ]
    specs, _ = find_plugins(dists)
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={})
    assert list(plugins.detectors) == ["obj"]
    assert [(f.plugin, f.reason) for f in plugins.failures] == [
        ("typo", "import failed: AttributeError(\"module 'obj_mod' has no attribute 'nope'\")")
    ]


def test_pinning_a_distribution_that_is_not_installed_is_reported(tmp_path, caplog):
    # A typo in DYNTOOLSET_LOAD_PLUGINS used to leave the plugin out silently.
    dist = fake_distribution(
        tmp_path, "one", {"one": "one_mod"}, modules={"one_mod": detector_module("a", "one")}
    )
    specs, _ = find_plugins([dist])
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={"DYNTOOLSET_LOAD_PLUGINS": "one, tow"})
    assert list(plugins.detectors) == ["one"]
    assert [(f.plugin, f.distribution, f.reason) for f in plugins.failures] == [
        (
            "tow",
            "tow",
            "pinned in DYNTOOLSET_LOAD_PLUGINS but no installed distribution of that name "
            "has dyntoolset plugins (found: one)",
        )
    ]
    assert "pinned in DYNTOOLSET_LOAD_PLUGINS but no installed distribution" in caplog.text


class _SameKeyRenderer(ListRenderer):
    name = "same-key"  # another name, but ListRenderer's data key


class _OverridesRenderer(ListRenderer):
    name = "overrides"
    data_key = "overrides.yaml"


def test_two_renderers_cannot_write_one_data_key():
    # The second document silently replaced the first in the ConfigMap.
    plugins = make_plugin_set(
        renderers=[ListRenderer], builtin_detectors=False, builtin_renderers=False
    )
    with pytest.raises(DuplicateNameError) as info:
        plugins.add_renderer(_SameKeyRenderer, plugin="other")
    assert str(info.value).startswith(
        "renderer data key name 'lines.txt' is claimed by both <code> (plugin test) and "
        "<code> (plugin other)"
    )
    assert list(plugins.renderers) == ["lines"]


def test_a_renderer_cannot_write_the_operators_overrides():
    # It used to load, then crash every merge ("overrides.yaml belongs to the operator").
    plugins = make_plugin_set(builtin_detectors=False)
    with pytest.raises(PluginLoadError) as info:
        plugins.add_renderer(_OverridesRenderer)
    assert info.value.reason == (
        "_OverridesRenderer.data_key 'overrides.yaml' belongs to the operator and is never "
        "generated"
    )


def test_on_sys_path_forgets_only_modules_from_that_directory(tmp_path):
    import sys

    inside, sibling = tmp_path / "x", tmp_path / "x2"
    inside.mkdir()
    sibling.mkdir()
    (inside / "mod_inside.py").write_text("")
    (sibling / "mod_sibling.py").write_text("")
    sys.path.insert(0, str(sibling))
    try:
        with on_sys_path(inside):
            import mod_inside  # noqa: F401
            import mod_sibling  # noqa: F401
        assert "mod_inside" not in sys.modules
        assert "mod_sibling" in sys.modules  # /x2 is not inside /x
    finally:
        sys.path.remove(str(sibling))
        sys.modules.pop("mod_sibling", None)


@pytest.mark.parametrize(
    ("declaration", "reason"),
    [
        (
            'DYNTOOLSET_PLUGIN_API = "1"',
            f"built for plugin API 1, but this dyntoolset provides plugin API "
            f"{PLUGIN_API_VERSION} (compatible: 2.0 to {PLUGIN_API_VERSION}); install a release "
            f"of the plugin built for plugin API 2, or a dyntoolset that provides 1",
        ),
        (
            'DYNTOOLSET_PLUGIN_API = "3.0"',
            f"built for plugin API 3.0, but this dyntoolset provides plugin API "
            f"{PLUGIN_API_VERSION}",
        ),
        (
            'DYNTOOLSET_PLUGIN_API = "2.99"',
            f"built for plugin API 2.99, but this dyntoolset provides plugin API "
            f"{PLUGIN_API_VERSION}",
        ),
        (
            "DYNTOOLSET_PLUGIN_API = 2",
            "DYNTOOLSET_PLUGIN_API must be a string 'MAJOR' or 'MAJOR.MINOR', got 2",
        ),
        (
            "",
            f'declares no plugin API version: add DYNTOOLSET_PLUGIN_API = "{PLUGIN_API_VERSION}" '
            "next to its hook implementations",
        ),
    ],
)
def test_an_incompatible_plugin_api_is_a_load_error_and_the_rest_keep_working(
    tmp_path, declaration, reason
):
    old = detector_module("x", "old").replace('DYNTOOLSET_PLUGIN_API = "2"', declaration)
    dists = [
        fake_distribution(tmp_path, "old-plugin", {"old": "old_mod"}, modules={"old_mod": old}),
        fake_distribution(
            tmp_path,
            "new-plugin",
            {"new": "new_mod"},
            modules={"new_mod": detector_module("x", "new")},
        ),
    ]
    specs, _ = find_plugins(dists)
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={})
    assert list(plugins.detectors) == ["new"]
    assert plugins.detectors["new"].api_version == "2"
    (failure,) = plugins.failures
    assert (failure.plugin, failure.distribution) == ("old", "old-plugin")
    assert failure.reason.startswith(reason)
    assert str(failure).startswith("plugin 'old' from old-plugin: ")


@pytest.mark.parametrize("declared", ["2", "2.0", PLUGIN_API_VERSION])
def test_a_plugin_built_for_an_older_minor_api_loads(tmp_path, declared):
    source = detector_module("x", "fine").replace('"2"', repr(declared))
    dist = fake_distribution(
        tmp_path, "fine-plugin", {"fine": "fine_mod"}, modules={"fine_mod": source}
    )
    specs, _ = find_plugins([dist])
    with on_sys_path(tmp_path):
        plugins = load_plugins(specs, environ={})
    assert plugins.failures == []
    assert plugins.detectors["fine"].api_version == declared


def test_builtins_declare_the_api_they_are_built_with():
    plugins = load_plugins(only=[])
    assert {info.api_version for info in plugins.detectors.values()} == {PLUGIN_API_VERSION}
    assert {info.api_version for info in plugins.renderers.values()} == {PLUGIN_API_VERSION}
