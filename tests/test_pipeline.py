"""Engine: a renderer that fails names itself and nothing partial is produced."""

from __future__ import annotations

import pytest

from dyntoolset import Engine
from dyntoolset.cli import main
from dyntoolset.config import load_config
from dyntoolset.configmap import OVERRIDES_KEY
from dyntoolset.errors import RenderError
from dyntoolset.testing import make_plugin_set, make_service
from tests.helpers import LabelDetector, ListRenderer

T0 = "2026-01-01T00:00:00Z"
SERVICE = make_service("a", labels={"app": "alpha"})


class RaisingRenderer(ListRenderer):
    name = "raising"
    data_key = "raising.txt"

    def render(self, discovered):
        raise RuntimeError("render boom")


class NoneRenderer(ListRenderer):
    name = "none"
    data_key = "none.txt"

    def render(self, discovered):
        return None


class BuggyOverridesRenderer(ListRenderer):
    name = "buggy"
    data_key = "buggy.txt"

    def apply_overrides(self, document, overrides):
        return document + overrides["missing"]


def engine_with(*renderers) -> Engine:
    plugins = make_plugin_set(
        LabelDetector,
        renderers=[ListRenderer, *renderers],
        builtin_detectors=False,
        builtin_renderers=False,
    )
    return Engine(load_config(None, plugins), plugins)


@pytest.mark.parametrize(
    ("renderer", "reason"),
    [
        (RaisingRenderer, "render() raised RuntimeError('render boom')"),
        (NoneRenderer, "render() returned NoneType, not str"),
    ],
)
def test_a_failing_renderer_is_named_and_nothing_partial_is_produced(renderer, reason):
    engine = engine_with(renderer)
    expected = (
        f"renderer {renderer.name!r} (<code>) failed: {reason}; no ConfigMap is produced "
        f"and the previous one is kept"
    )
    with pytest.raises(RenderError) as info:
        engine.cycle([SERVICE], configmap=False)
    assert str(info.value) == expected
    assert info.value.renderer == renderer.name
    with pytest.raises(RenderError, match="no ConfigMap is produced"):
        engine.cycle([SERVICE], now=T0)
    # The other formats still render on their own.
    assert engine.cycle([SERVICE], formats=["lines"], configmap=False).documents == {
        "lines.txt": "default/a alpha http://a.default.svc.cluster.local:80\n"
    }


def test_a_renderer_bug_in_apply_overrides_is_named():
    engine = engine_with(BuggyOverridesRenderer)
    existing = engine.cycle([SERVICE], now=T0).merge.configmap
    existing["data"][OVERRIDES_KEY] = "toolsets: {}\n"
    with pytest.raises(RenderError) as info:
        engine.cycle([SERVICE], existing=existing, now=T0)
    assert str(info.value) == (
        "renderer 'buggy' (<code>) failed: apply_overrides() raised KeyError('missing'); "
        "no ConfigMap is produced and the previous one is kept"
    )


def test_cli_reports_a_failing_renderer_and_exits_1(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(
        "dyntoolset.pipeline.load_plugins",
        lambda: make_plugin_set(renderers=[RaisingRenderer]),
    )
    manifest = tmp_path / "svc.yaml"
    manifest.write_text("kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n")
    code = main(["discover", "-f", str(manifest)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == (
        "dyntoolset: renderer 'raising' (<code>) failed: render() raised "
        "RuntimeError('render boom'); no ConfigMap is produced and the previous one is kept"
    )
