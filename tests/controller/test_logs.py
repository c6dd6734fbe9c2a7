"""The run's log formats, and that a run in process leaves logging as it found it."""

from __future__ import annotations

import io
import json
import logging

from dyntoolset.controller.logs import configure_logging


def test_json_lines_carry_the_event_fields() -> None:
    stream = io.StringIO()
    restore = configure_logging("json", logging.INFO, stream)
    try:
        logging.getLogger("dyntoolset.test").info(
            "reconcile %s", "success", extra={"dyntoolset": {"event": "reconcile", "wrote": True}}
        )
        logging.getLogger("dyntoolset.test").debug("not at info")
    finally:
        restore()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["message"] == "reconcile success"
    assert (record["level"], record["logger"]) == ("info", "dyntoolset.test")
    assert (record["event"], record["wrote"]) == ("reconcile", True)
    assert record["time"].endswith("+00:00")


def test_text_lines_and_restore() -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    stream = io.StringIO()
    restore = configure_logging("text", logging.DEBUG, stream)
    logging.getLogger("dyntoolset.test").debug("hello %d", 1)
    restore()
    logging.getLogger("dyntoolset.test").warning("after restore")
    assert "DEBUG dyntoolset.test: hello 1" in stream.getvalue()
    assert "after restore" not in stream.getvalue()
    assert (list(root.handlers), root.level) == before
