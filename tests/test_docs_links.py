"""Every relative link in README.md and docs/*.md leads to an existing file, and anchor.

Anchors are GitHub's: the heading lowercased, punctuation other than ``-``
and ``_`` dropped, spaces turned into ``-``, a repeated slug suffixed with
``-1``, ``-2``. Links inside fenced code blocks are not links.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: Counter[str] = Counter()
    found = set()
    for heading in _HEADING.findall(text):
        base = slug(heading)
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def link_problems(page: Path) -> list[str]:
    """Every relative link of ``page`` that leads nowhere, as ``page: link: why``."""
    problems = []
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        name = f"{page.relative_to(ROOT)}: {target}"
        if not resolved.exists():
            problems.append(f"{name}: no such file")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{name}: no heading with anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert link_problems(page) == []


def test_the_docs_index_lists_every_page() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    assert pages - listed == set(), "docs/README.md must list every page"


def test_broken_links_and_anchors_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "b.md").write_text("# Kinds: `http`, tcp\n## Same\n## Same\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#kinds-http-tcp) [dup](b.md#same-1) [self](#top)\n# Top\n"
        "[gone](c.md) [bad](b.md#nope) [web](https://x.invalid/y)\n"
        "```\n[in code](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    import tests.test_docs_links as module

    monkeypatch.setattr(module, "ROOT", tmp_path)
    assert module.link_problems(page) == [
        "a.md: c.md: no such file",
        "a.md: b.md#nope: no heading with anchor #nope",
    ]
    assert slug("`holmesgpt`: `custom_toolset.yaml`") == "holmesgpt-custom_toolsetyaml"


_TEST_REFERENCE = re.compile(r"(tests/[\w/]+\.py)?::(test_\w+)")


def cited_tests(text: str) -> list[tuple[str, str]]:
    """``(file, test)`` for every ``tests/x.py::test_name`` in ``text``; a bare
    ``::test_name`` belongs to the file cited last."""
    cited, last = [], None
    for match in _TEST_REFERENCE.finditer(text):
        last = match.group(1) or last
        assert last is not None, f"::{match.group(2)} cited before any test file"
        cited.append((last, match.group(2)))
    return cited


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_test_a_page_cites_exists(page: Path) -> None:
    missing = [
        f"{file}::{name}"
        for file, name in cited_tests(page.read_text(encoding="utf-8"))
        if not (ROOT / file).exists()
        or not re.search(rf"^\s*def {name}\(", (ROOT / file).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == [], f"{page.name} cites tests that do not exist"


def test_citations_are_read_with_their_file() -> None:
    text = "`tests/a.py::test_one`, `::test_two` and `tests/b.py::test_three`; `::1` is IPv6"
    assert cited_tests(text) == [
        ("tests/a.py", "test_one"),
        ("tests/a.py", "test_two"),
        ("tests/b.py", "test_three"),
    ]
