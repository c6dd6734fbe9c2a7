"""Structured logs for ``dyntoolset run``: text for people, JSON lines for collectors.

Components attach the fields of an event to a record as
``extra={"dyntoolset": {...}}`` (``event``, ``result``, counts, ...). The
JSON format writes them as top-level keys of the line next to ``time``,
``level``, ``logger`` and ``message``; the text format writes the message
alone (it already says the same in words).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["JsonFormatter", "configure_logging"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _RunHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs (so a second call replaces it)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the record's ``dyntoolset`` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "dyntoolset", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(str(key), value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(
    log_format: str, level: int, stream: TextIO | None = None
) -> Callable[[], None]:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``log_format``.

    Replaces the handler of an earlier call and the CLI's default one.
    Returns a function that puts the previous handlers and levels back (for
    a run inside a longer-lived process: an embedder, a test).
    """
    handler = _RunHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    urllib3 = logging.getLogger("urllib3")
    saved_handlers, saved_level, saved_urllib3 = list(root.handlers), root.level, urllib3.level
    # Replace our own earlier handler and the CLI's basicConfig one; leave any
    # other (an embedder's, pytest's capture) alone.
    for old in saved_handlers:
        if isinstance(old, _RunHandler) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The client library's connection-pool chatter is not an event that matters.
    urllib3.setLevel(max(level, logging.WARNING))

    def restore() -> None:
        for current in list(root.handlers):
            root.removeHandler(current)
        for previous in saved_handlers:
            root.addHandler(previous)
        root.setLevel(saved_level)
        urllib3.setLevel(saved_urllib3)

    return restore
