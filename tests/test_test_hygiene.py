"""Guards on the test suite itself: two habits that make tests pass without checking.

1. ``pytest.raises(Exception)`` (or ``BaseException``, alone or in a tuple)
   without ``match=``: any error at all satisfies it, including a typo in the
   test or an error the test raised itself. Name the exception you expect, or
   say with ``match=`` which message.
2. A Hypothesis ``@given`` test whose body checks nothing: every example
   passes unless something happens to raise. The body (not counting functions
   defined inside it) must contain an ``assert`` statement, a
   ``pytest.raises(...)``, or a call of a helper whose name, leading
   underscores aside, starts with ``assert`` or ``check`` (``assert_share``,
   ``_check_refusal``): the convention for helpers that assert.

The rules read the sources with :mod:`ast`, so comments and ``noqa`` cannot
silence them. They cover ``tests/`` and every plugin's ``tests/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROAD = frozenset({"Exception", "BaseException"})
CHECKING_PREFIXES = ("assert", "check")


def suite_sources() -> list[Path]:
    """Every Python file of the test suites."""
    files = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "plugins").glob("*/tests/**/*.py")]
    return sorted(p for p in files if ".venv" not in p.parts)


def _name(node: ast.expr) -> str:
    """``x`` for ``x``, ``b`` for ``a.b``, ``""`` for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_pytest_raises(call: ast.Call) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "raises"
        and isinstance(func.value, ast.Name)
        and func.value.id == "pytest"
    ) or (isinstance(func, ast.Name) and func.id == "raises")


def _is_broad(expected: ast.expr) -> bool:
    if isinstance(expected, ast.Tuple):
        return any(_is_broad(e) for e in expected.elts)
    return _name(expected) in BROAD


def broad_raises(tree: ast.AST) -> Iterator[int]:
    """Lines of ``pytest.raises(Exception or BaseException)`` without ``match=``."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and _is_pytest_raises(node)
            and node.args
            and _is_broad(node.args[0])
            and not any(k.arg == "match" for k in node.keywords)
        ):
            yield node.lineno


def _is_given(decorator: ast.expr) -> bool:
    return isinstance(decorator, ast.Call) and _name(decorator.func) == "given"


def _own_nodes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    """The nodes of ``function``'s body, without those of functions defined in it."""
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))


def _checks_something(node: ast.AST) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Call):
        return _is_pytest_raises(node) or _name(node.func).lstrip("_").startswith(CHECKING_PREFIXES)
    return False


def unchecked_given_tests(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, name)`` of ``@given`` functions whose body checks nothing."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and any(_is_given(d) for d in node.decorator_list)
            and not any(_checks_something(n) for n in _own_nodes(node))
        ):
            yield node.lineno, node.name


def test_the_suite_is_scanned() -> None:
    sources = suite_sources()
    assert Path(__file__).resolve() in sources
    assert any("plugins" in p.parts for p in sources)
    # The scan sees the suite's own property tests, so an empty result means something.
    assert (
        sum(
            1
            for path in sources
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef) and any(_is_given(d) for d in node.decorator_list)
        )
        >= 8
    )


def test_no_broad_pytest_raises_without_match() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in suite_sources()
        for line in broad_raises(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == [], (
        "pytest.raises(Exception) passes on any error, a bug in the test included; "
        f"expect the specific exception or add match=: {found}"
    )


def test_every_given_test_checks_something() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in suite_sources()
        for line, name in unchecked_given_tests(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == [], (
        "these @given tests contain no assert, no pytest.raises and no call of an "
        f"assert*/check* helper, so no example can fail them: {found}"
    )


# -- the rules themselves: each must catch what it is for, and only that ----------


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("with pytest.raises(Exception):\n    f()\n", [1]),
        ("with pytest.raises(BaseException):\n    f()\n", [1]),
        ("with pytest.raises((ValueError, Exception)):\n    f()\n", [1]),
        ("with pytest.raises(builtins.Exception):\n    f()\n", [1]),
        ("x = 1\npytest.raises(Exception, f)\n", [2]),
        ("with pytest.raises(Exception, match='boom'):\n    f()\n", []),
        ("with pytest.raises(ValueError):\n    f()\n", []),
        ("with pytest.raises(urllib3.exceptions.ProtocolError):\n    f()\n", []),
        ("with self.assertRaises(Exception):\n    f()\n", []),
    ],
)
def test_broad_raises_rule(source: str, lines: list[int]) -> None:
    assert list(broad_raises(ast.parse(source))) == lines


GIVEN = "@settings(max_examples=5)\n@given(st.integers())\ndef test_x(n):\n"


@pytest.mark.parametrize(
    ("body", "flagged"),
    [
        ("    f(n)\n", True),
        ("    try:\n        f(n)\n    except ValueError:\n        pass\n", True),
        ("    def inner():\n        assert n\n    inner\n", True),  # never called
        ("    assert f(n) == 1\n", False),
        ("    if n:\n        assert f(n)\n", False),
        ("    with pytest.raises(ValueError):\n        f(n)\n", False),
        ("    outcomes.assert_share('a')\n", False),
        ("    _check_refusal(f(n))\n", False),
        ("    check_detector(Det)\n", False),
    ],
)
def test_given_without_assertion_rule(body: str, flagged: bool) -> None:
    found = [name for _, name in unchecked_given_tests(ast.parse(GIVEN + body))]
    assert found == (["test_x"] if flagged else [])


def test_undecorated_functions_are_not_given_tests() -> None:
    assert list(unchecked_given_tests(ast.parse("def test_x():\n    f()\n"))) == []
    source = "@pytest.mark.parametrize('n', [1])\ndef test_x(n):\n    f(n)\n"
    assert list(unchecked_given_tests(ast.parse(source))) == []
