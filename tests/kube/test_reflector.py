"""Reflector answers no API server gives (the list call is our boundary): garbage is survived."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from dyntoolset.kube.watch import Collection, Reflector
from tests.kube._support import fast_backoff, wait_for


class FakeResponse:
    def __init__(self, data: bytes = b"", lines: tuple[bytes, ...] = ()) -> None:
        self.data = data
        self._lines = lines

    def stream(self, amt: Any = None, decode_content: bool = True) -> Iterator[bytes]:
        yield from self._lines

    def release_conn(self) -> None:
        return None

    def shutdown(self) -> None:
        return None


class Sink:
    def __init__(self) -> None:
        self.replaced: list[list[dict[str, Any]]] = []
        self.events: list[tuple[str, str]] = []

    def replace(self, objects: list[dict[str, Any]]) -> None:
        self.replaced.append(objects)

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((kind, obj["metadata"]["name"]))

    def unsynced(self) -> None:
        return None


def run(call: Any) -> tuple[Reflector, Sink, threading.Event, threading.Thread]:
    sink = Sink()
    stopped = threading.Event()
    reflector = Reflector(
        Collection(call, "services"), sink, stopped=stopped, backoff=fast_backoff()
    )
    thread = threading.Thread(target=reflector.run, daemon=True)
    thread.start()
    return reflector, sink, stopped, thread


def test_a_list_answer_that_is_not_json_is_a_temporary_failure() -> None:
    answers = iter([FakeResponse(b"<html>proxy error</html>"), FakeResponse(b"[1, 2]")])

    def call(**kwargs: Any) -> FakeResponse:
        return next(answers, FakeResponse(b'{"metadata": {"resourceVersion": "5"}, "items": []}'))

    reflector, sink, stopped, thread = run(call)
    wait_for(lambda: sink.replaced, what="the list after two bad answers")
    stopped.set()
    thread.join(5)
    assert reflector.failures >= 2 and sink.replaced[0] == []
    assert reflector.last_failure is not None
    assert reflector.last_failure.error_type == "invalid_response"
    assert "not a JSON object" in reflector.last_failure.message


def test_watch_lines_that_are_not_events_are_skipped() -> None:
    added = b'{"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "7"}}}'

    def call(**kwargs: Any) -> FakeResponse:
        if kwargs.get("watch"):
            return FakeResponse(lines=(b"garbage\n", b'{"type": "ADDED"}\n', added + b"\n"))
        return FakeResponse(b'{"metadata": {"resourceVersion": "5"}, "items": []}')

    reflector, sink, stopped, thread = run(call)
    wait_for(lambda: sink.events, what="the valid event")
    stopped.set()
    thread.join(5)
    assert sink.events[0] == ("ADDED", "a") and reflector.resource_version == "7"


def test_streams_that_end_at_once_and_empty_are_reopened_on_the_backoff() -> None:
    opened: list[float] = []

    def call(**kwargs: Any) -> FakeResponse:
        if kwargs.get("watch"):
            opened.append(kwargs["timeout_seconds"])
            return FakeResponse(lines=())  # the server closes every watch at once
        return FakeResponse(b'{"metadata": {"resourceVersion": "5"}, "items": []}')

    reflector, _, stopped, thread = run(call)
    wait_for(lambda: len(opened) >= 3, what="reopened watches")
    time.sleep(0.5)  # time passing: delays of 10 ms doubling to 200 ms
    stopped.set()
    thread.join(5)
    assert reflector.lists == 1  # reopened from the version, never relisted
    assert len(opened) <= 15  # a hot loop would open thousands
