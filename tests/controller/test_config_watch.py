"""The configuration file poll: every way a file changes, and the ways it does not.

Each test drives :meth:`FileWatch.poll` directly (no thread, no timing) and
counts the callbacks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dyntoolset.controller.config_watch import FileWatch, digest
from tests.kube._support import wait_for

OLD = "resync_interval: 300\n"
NEW = "resync_interval: 60\n"


class Calls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def watch_of(path: Path, text: str = OLD, **options: object) -> tuple[FileWatch, Calls]:
    calls = Calls()
    watch = FileWatch(str(path), calls, baseline=digest(text), **options)  # type: ignore[arg-type]
    return watch, calls


def kubelet_layout(directory: Path, text: str, stamp: str) -> None:
    """What the kubelet builds for a mounted ConfigMap: a timestamped directory,
    ``..data`` pointing at it, and ``config.yaml -> ..data/config.yaml``."""
    version = directory / f"..2026_12_01_{stamp}"
    version.mkdir()
    (version / "config.yaml").write_text(text)
    (directory / "..data").symlink_to(version.name)
    (directory / "config.yaml").symlink_to("..data/config.yaml")


def kubelet_update(directory: Path, text: str, stamp: str) -> None:
    """The kubelet's update: a new timestamped directory, then an atomic ``..data`` swap
    (a temporary symlink renamed over the old one), then the old directory removed."""
    old = os.readlink(directory / "..data")
    version = directory / f"..2026_12_01_{stamp}"
    version.mkdir()
    (version / "config.yaml").write_text(text)
    (directory / "..data_tmp").symlink_to(version.name)
    os.rename(directory / "..data_tmp", directory / "..data")
    for item in (directory / old).iterdir():
        item.unlink()
    (directory / old).rmdir()


def test_a_plain_rewrite_is_seen_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(OLD)
    watch, calls = watch_of(path)
    assert not watch.poll()
    path.write_text(NEW)
    assert watch.poll()
    assert not watch.poll()
    assert calls.count == 1


def test_an_atomic_rename_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(OLD)
    watch, calls = watch_of(path)
    watch.poll()
    (tmp_path / ".config.yaml.swp").write_text(NEW)
    os.rename(tmp_path / ".config.yaml.swp", path)
    assert watch.poll()
    assert calls.count == 1


def test_a_kubelet_data_symlink_swap_is_seen(tmp_path: Path) -> None:
    kubelet_layout(tmp_path, OLD, "10_00_00.1")
    path = tmp_path / "config.yaml"
    watch, calls = watch_of(path)
    assert not watch.poll()
    kubelet_update(tmp_path, NEW, "10_01_00.2")
    assert path.read_text() == NEW  # the layout is the real one: the link resolves anew
    assert watch.poll()
    assert not watch.poll()
    kubelet_update(tmp_path, OLD, "10_02_00.3")
    assert watch.poll()
    assert calls.count == 2


def test_a_swap_to_the_same_content_is_no_change(tmp_path: Path) -> None:
    kubelet_layout(tmp_path, OLD, "10_00_00.1")
    watch, calls = watch_of(tmp_path / "config.yaml")
    watch.poll()
    kubelet_update(tmp_path, OLD, "10_01_00.2")  # e.g. only a label of the ConfigMap changed
    assert not watch.poll()
    assert calls.count == 0


def test_touching_the_file_is_no_change(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(OLD)
    watch, calls = watch_of(path)
    watch.poll()
    os.utime(path, ns=(1, 1))
    assert not watch.poll()
    assert calls.count == 0


def test_a_deletion_is_reported_once_and_a_return_is_a_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(OLD)
    watch, calls = watch_of(path)
    watch.poll()
    path.unlink()
    assert watch.poll()
    assert not watch.poll()
    assert calls.count == 1
    missing = [r for r in caplog.records if r.dyntoolset["event"] == "config_file_missing"]  # type: ignore[attr-defined]
    assert len(missing) == 1 and str(path) in missing[0].getMessage()
    path.write_text(OLD)
    assert watch.poll()  # back: the reloader decides whether it differs from what runs
    assert calls.count == 2


def test_a_change_before_the_first_poll_is_not_missed(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(NEW)  # loaded OLD, then edited before the watch looked
    watch, calls = watch_of(path, OLD)
    assert watch.poll()
    assert calls.count == 1


def test_without_a_baseline_the_first_content_is_the_baseline(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(NEW)
    calls = Calls()
    watch = FileWatch(str(path), calls)
    assert not watch.poll()
    path.write_text(OLD)
    assert watch.poll()
    assert calls.count == 1


class FrozenStat(FileWatch):
    """A file system whose timestamps did not move (coarse granularity, same size)."""

    def _stat_of(self) -> tuple[int, ...] | None:
        return (1, 2, 3)


def test_a_change_invisible_to_stat_is_found_by_the_periodic_hash(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(OLD)
    calls = Calls()
    watch = FrozenStat(str(path), calls, baseline=digest(OLD), rehash_every=3)
    watch.poll()
    path.write_text(NEW)
    seen = [watch.poll() for _ in range(3)]
    assert seen.count(True) == 1
    assert calls.count == 1


def test_the_thread_polls_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(OLD)
    calls = Calls()
    watch = FileWatch(str(path), calls, baseline=digest(OLD), interval=0.01)
    watch.start()
    try:
        path.write_text(NEW)
        wait_for(lambda: calls.count, what="the poll thread to see the change")
        assert calls.count == 1
    finally:
        watch.stop()
    assert watch._thread is not None and not watch._thread.is_alive()
    with pytest.raises(RuntimeError):
        watch.start()


def test_a_non_positive_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="above 0"):
        FileWatch(str(tmp_path / "x"), Calls(), interval=0)
