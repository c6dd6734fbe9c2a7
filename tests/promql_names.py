"""The metric names a PromQL expression selects, found by a small tokenizer.

A name is an identifier that is not a function (followed by ``(``), an
aggregation operator, a keyword, a label name (inside ``{...}`` or the label
list of ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``),
part of a string, a duration or a number, or a dashboard variable (``$job``).
"""

from __future__ import annotations

import re

AGGREGATIONS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip
KEYWORDS = frozenset({"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"})
#: Keywords followed by a parenthesised list of label names.
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<range>\[[^\]]*\])
    | (?P<variable>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
    | (?P<number>\d[\w.]*)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<punct>[(){},])
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE,
)


def tokens(expr: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs; whitespace dropped."""
    return [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(expr) if m.lastgroup != "space"]


def metric_names(expr: str) -> set[str]:
    """Every metric name ``expr`` selects."""
    found: set[str] = set()
    items = tokens(expr)
    braces = 0
    label_list_depth: int | None = None  # paren depth of an open label list
    parens = 0
    for index, (kind, text) in enumerate(items):
        following = items[index + 1][1] if index + 1 < len(items) else ""
        if kind == "punct":
            if text == "{":
                braces += 1
            elif text == "}":
                braces -= 1
            elif text == "(":
                parens += 1
            elif text == ")":
                if label_list_depth == parens:
                    label_list_depth = None
                parens -= 1
            continue
        if kind != "ident" or braces or label_list_depth is not None:
            continue
        if text in LABEL_LISTS:
            if following == "(":
                label_list_depth = parens + 1
            continue
        if text in KEYWORDS or text in AGGREGATIONS or following == "(":
            continue
        found.add(text)
    return found
