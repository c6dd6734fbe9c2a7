"""Request bodies: how many bytes are read, and how they are decoded, as a real server would.

The real API server reads at most 3 MiB of a request body (413 above that),
refuses a malformed ``Content-Length`` with 400 and decodes JSON that has no
``NaN`` or ``Infinity`` (they are not JSON). YAML bodies go through the
project's bounded YAML loader. On top of that, a decoded document is walked
once, iteratively, before anything else touches it: nesting deeper than
:data:`MAX_DEPTH` and more values than the body could hold without YAML
aliases (an alias bomb) are refused with 400, so no later step (validation,
deep copies, the request log) can recurse out of stack or expand a small
body into gigabytes.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

from dyntoolset.boundedyaml import load_bounded_yaml
from dyntoolset.testing.apiserver.resources import ApiError, bad_request

#: The largest request body the real API server reads (``MaxRequestBodyBytes``).
MAX_BODY_BYTES = 3 * 1024 * 1024
#: The deepest nesting of a decoded body; Kubernetes objects need a few dozen levels.
MAX_DEPTH = 100
#: Values allowed per byte of body. JSON needs at least two bytes per value
#: (``0,``), YAML at least one, so more values than bytes can only come from
#: aliases expanding one node many times.
_VALUES_PER_BYTE = 1
_LENGTH = re.compile(r"[0-9]{1,19}")
_MAX_TRAILERS = 100
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,16})(;[^\r\n]*)?")


def too_large() -> ApiError:
    """413, as the real server answers a body over its limit."""
    return ApiError(
        413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY_BYTES}"
    )


def content_length(values: list[str]) -> int:
    """The body length a request announces (0 without a header).

    Raises:
        ApiError: 400 for a value that is not a plain decimal number (``abc``,
            ``1e3``, ``-1``) or for two headers that disagree, as Go's HTTP
            server refuses them; 413 above :data:`MAX_BODY_BYTES`.
    """
    distinct = {value.strip() for value in values}
    if len(distinct) > 1:
        raise bad_request("bad Content-Length: the request carries conflicting values")
    if not distinct:
        return 0
    text = distinct.pop()
    if not _LENGTH.fullmatch(text) or int(text) >= 2**63:
        raise bad_request(f"bad Content-Length {text!r}: it must be a decimal number of bytes")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise too_large()
    return length


def read_chunked(rfile: io.BufferedIOBase) -> bytes:
    """A ``Transfer-Encoding: chunked`` body, refused once it grows over the limit.

    Raises:
        ApiError: 400 for malformed chunk framing, 413 over :data:`MAX_BODY_BYTES`.
    """
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(100).rstrip(b"\r\n")
        match = _CHUNK_SIZE.fullmatch(line)
        if match is None:
            raise bad_request("malformed chunked encoding")
        size = int(match.group(1), 16)
        if size == 0:
            for _ in range(_MAX_TRAILERS):  # trailers are read and ignored
                if rfile.readline(1000) in (b"\r\n", b"\n", b""):
                    return b"".join(parts)
            raise bad_request("malformed chunked encoding: too many trailer lines")
        total += size
        if total > MAX_BODY_BYTES:
            raise too_large()
        data = rfile.read(size)
        if len(data) != size or rfile.readline(3) not in (b"\r\n", b"\n"):
            raise bad_request("malformed chunked encoding")
        parts.append(data)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode(raw: bytes, content_type: str) -> Any:
    """The document in a request body: YAML for ``*yaml`` media types, JSON otherwise.

    Raises:
        ApiError: 400 with what is wrong (syntax, NaN or Infinity, too deep, alias bomb).
    """
    if "yaml" in content_type:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad_request(f"error decoding YAML: the body is not UTF-8: {exc}") from None
        doc, problems = load_bounded_yaml(text)
        if problems:
            raise bad_request(f"error decoding YAML: {problems[0].message}")
    else:
        try:
            doc = json.loads(raw, parse_constant=_refuse_constant)
        except RecursionError:
            raise _too_deep() from None
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
            raise bad_request(f"the body could not be decoded as JSON: {exc}") from None
    check_document(doc, budget=max(len(raw) * _VALUES_PER_BYTE, 1000))
    return doc


def _too_deep() -> ApiError:
    return bad_request(f"the body is nested deeper than {MAX_DEPTH} levels")


def check_document(doc: Any, budget: int) -> None:
    """Walk ``doc`` once without recursion; refuse depth, expansion and non-finite numbers.

    Raises:
        ApiError: 400 for nesting deeper than :data:`MAX_DEPTH`, more than
            ``budget`` values (counting every use of a shared value), or a
            NaN or infinite number (JSON cannot carry them).
    """
    stack: list[tuple[Any, int]] = [(doc, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > budget:
            raise bad_request(
                "the body expands to more values than it has bytes (YAML aliases "
                "repeating large nodes are refused)"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise bad_request(f"the body contains {value!r}, which is not a valid JSON number")
        children: Any = None
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        if children:
            if depth >= MAX_DEPTH:
                raise _too_deep()
            stack.extend((child, depth + 1) for child in children)


def decode_or_raw(raw: bytes, content_type: str) -> Any:
    """The decoded body for the request log, or the raw bytes when it does not decode."""
    try:
        return decode(raw, content_type)
    except ApiError:
        return raw
