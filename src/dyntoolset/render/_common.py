"""Helpers shared by the built-in renderers (not part of the plugin API).

Everything that reaches a document from the cluster (Service names, labels,
annotations, descriptions, endpoints) is untrusted: anyone who may annotate a
Service in some namespace controls it. These helpers turn such values into
plain, serialisable data that cannot change a document's structure or make a
consumer do something else than read it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dyntoolset.model import Discovered

# HolmesGPT replaces ``{{ env.NAME }}`` in *every* string of a toolset entry
# with the value of that environment variable (holmes/utils/env.py,
# ``replace_env_vars_values``, called by ``load_toolsets_from_config`` on the
# whole entry), and fails the toolset if the variable is missing. A Service
# annotation carrying ``{{ env.OPENAI_API_KEY }}`` would thus copy a secret
# into a prompt or a URL. This is HolmesGPT's own pattern, so whatever it would
# expand we recognise.
_ENV_PLACEHOLDER = re.compile(r"{{\s*env\.([^}]*)\s*}}")
# A value that is exactly one placeholder with a sane variable name: the way a
# detector refers to a secret (``api_key: "{{ env.GRAFANA_API_KEY }}"``).
_WHOLE_PLACEHOLDER = re.compile(r"{{\s*env\.[A-Za-z_][A-Za-z0-9_]*\s*}}")
#: Config keys whose value may be exactly one ``{{ env.NAME }}`` placeholder.
SECRET_KEYS = frozenset({"api_key", "password", "token", "bearer_token", "username"})
# An HTTP header carrying a secret (Prometheus' ``additional_headers``, written
# by dyntoolset.credentials for ``token_env``): the scheme, then one placeholder.
_AUTH_HEADER = "Authorization"
_AUTH_HEADER_VALUE = re.compile(r"(?:Bearer|Basic|ApiKey) {{\s*env\.[A-Za-z_][A-Za-z0-9_]*\s*}}")

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

JSONScalar = str | int | float | bool | None


class UnrenderableError(ValueError):
    """A toolset's config holds something the output format cannot carry safely."""


def utf8_safe(value: str) -> str:
    """``value`` with lone surrogates (possible in a Python ``str``, never in UTF-8)
    replaced by U+FFFD, so the ConfigMap holding it can be encoded."""
    if _LONE_SURROGATE.search(value):
        return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def clean_text(value: str) -> str:
    """``value`` made safe to emit as HolmesGPT text: :func:`utf8_safe`, and
    ``{{ env.`` placeholders broken up so HolmesGPT leaves them alone."""
    value = utf8_safe(value)
    if _ENV_PLACEHOLDER.search(value):
        # Separating the braces everywhere (not just in front of "env.")
        # leaves no way to rebuild "{{" from what is left.
        while "{{" in value:
            value = value.replace("{{", "{ {")
    return value


def plain_config(value: Any, *, key: str = "") -> Any:
    """A deep copy of a toolset config as plain ``dict``/``list``/scalars.

    Strings go through :func:`clean_text`, except a whole ``{{ env.NAME }}``
    placeholder under one of :data:`SECRET_KEYS`, and ``Bearer {{ env.NAME }}``
    (or ``Basic``, ``ApiKey``) under an ``Authorization`` header. Raises
    :class:`UnrenderableError` for values YAML/JSON cannot carry, and for
    mapping keys that are not strings or contain ``.``: HolmesGPT reads custom
    toolset files with ``benedict``, whose ``.`` keypath separator makes it
    reject the *whole file* when any key contains a dot.
    """
    if isinstance(value, str):
        if key in SECRET_KEYS and _WHOLE_PLACEHOLDER.fullmatch(value):
            return value
        if key == _AUTH_HEADER and _AUTH_HEADER_VALUE.fullmatch(value):
            return value
        return clean_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str) or "." in k or not k:
                raise UnrenderableError(f"config key {k!r} is not a plain string without '.'")
            out[clean_text(k)] = plain_config(v, key=k)
        return out
    if isinstance(value, list | tuple):
        return [plain_config(item) for item in value]
    raise UnrenderableError(f"config value of type {type(value).__name__} cannot be rendered")


def short_hash(*parts: str) -> str:
    """Eight hex digits identifying ``parts``: stable across runs and machines."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:8]


def unique_names(names: Sequence[str], seeds: Sequence[Sequence[str]], sep: str = "-") -> list[str]:
    """``names`` made distinct: every name that occurs more than once gets
    ``sep`` and :func:`short_hash` of its seed appended.

    Only colliding names change, so adding a Service renames nothing unless it
    collides. Seeds should identify the item (e.g. namespace, name, detector);
    if even they are equal, the position in ``names`` breaks the tie.
    """
    counts = Counter(names)
    result = [
        f"{name}{sep}{short_hash(*seed)}" if counts[name] > 1 else name
        for name, seed in zip(names, seeds, strict=True)
    ]
    taken: set[str] = set()
    for i, name in enumerate(result):
        candidate = name
        while candidate in taken:
            candidate = f"{name}{sep}{short_hash(name, str(i), candidate)}"
        result[i] = candidate
        taken.add(candidate)
    return result


def ordered(discovered: Iterable[Discovered]) -> list[Discovered]:
    """``discovered`` by namespace, name (and detector, for ties).

    The core already passes them sorted; sorting again makes byte-identical
    output independent of that promise at negligible cost.
    """
    return sorted(
        discovered,
        key=lambda d: (d.service.namespace, d.service.name, d.detector, d.endpoint),
    )
