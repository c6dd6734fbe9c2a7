"""docs/configuration-reference.md is generated from the schema and cannot drift from it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Literal

import attrs
import pytest

from dyntoolset.values import INT_BOUNDS, PositiveInt, Seconds

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "config_reference.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_the_committed_page_is_what_the_schema_generates(request: pytest.FixtureRequest) -> None:
    script = _script()
    missing = [d for d in script.plugin_distributions() if not _installed(d)]
    if missing and not request.config.getoption("--require-integration"):
        pytest.skip(
            f"the page documents every plugin's settings: pip install ./plugins/* ({missing})"
        )
    assert script.PAGE.read_text(encoding="utf-8") == script.page(), (
        "docs/configuration-reference.md is stale: python scripts/config_reference.py --write"
    )


def test_every_schema_field_has_a_row_with_its_meaning() -> None:
    from dyntoolset.config import RawConfig

    script = _script()
    text = "\n".join(script.sections(RawConfig, ""))

    def walk(cls: type) -> None:
        for field in attrs.fields(attrs.resolve_types(cls)):
            rows = [line for line in text.splitlines() if line.startswith(f"| `{field.name}` |")]
            assert rows, f"{cls.__name__}.{field.name} has no row"
            assert all(not row.endswith("|  |") for row in rows), (
                f"{cls.__name__}.{field.name}: no meaning"
            )
            inner = script._attrs_class(field.type)
            if inner is not None:
                walk(inner)

    walk(RawConfig)


@attrs.frozen
class _Inner:
    #: How often.
    every: Seconds = 90.0  # type: ignore[assignment]


@attrs.frozen
class _Section:
    """``new``: a section the schema gains later."""

    #: The mode.
    mode: Literal["a", "b"] = "a"
    #: A count.
    count: PositiveInt = 4  # type: ignore[assignment]
    inner: _Inner = _Inner()
    blocks: dict[str, _Inner] | None = None


def test_a_section_added_to_the_schema_is_documented_without_touching_the_script() -> None:
    lines = list(_script().sections(_Section, "new"))
    low, high = INT_BOUNDS[PositiveInt]
    assert "## `new`\n" in lines
    assert "| `mode` | one of | `a` | `a`, `b` | The mode. |" in lines
    assert f"| `count` | int | `4` | {low} … {high:,} | A count. |" in lines
    assert "| `inner` | mapping | see below |  |  |" in lines
    assert "## `new.inner`\n" in lines and "## `new.blocks.<name>`\n" in lines
    assert any(line.startswith("| `every` | duration | `1m30s` | positive") for line in lines)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(300.0, "5m"), (30.0, "30s"), (7200.0, "2h"), (90.0, "1m30s"), (0.5, "500ms")],
)
def test_durations_are_written_as_in_yaml(seconds: float, text: str) -> None:
    assert _script().format_duration(seconds) == text


def test_check_mode_reports_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _script()
    monkeypatch.setattr(script, "page", lambda: "# fresh\n")
    stale = tmp_path / "reference.md"
    stale.write_text("# old\n", encoding="utf-8")
    monkeypatch.setattr(script, "PAGE", stale)
    assert script.main(["--check"]) == 1
    assert script.main(["--write"]) == 0
    assert stale.read_text(encoding="utf-8") == "# fresh\n"
    assert script.main(["--check"]) == 0
