"""Noticing that the configuration changed: a file poll, and a watch on the ConfigMap.

**The file** is polled (:class:`FileWatch`) rather than watched with
inotify. A ConfigMap mounted as a volume changes by the kubelet writing a
new timestamped directory (``..2026_12_01_10_00_00.123/``) and swapping the
``..data`` symlink to it; ``config.yaml`` itself is a symlink to
``..data/config.yaml`` and is never written. An inotify watch on the file
loses it at the first swap, so the *directory* would have to be watched, and
every editor saves differently (rewrite in place, write and rename). A poll
that ``stat``\\ s the path *through* its symlinks sees all of these the same
way: the inode, size or modification time it resolves to changes. It is a
``stat`` every ``interval`` seconds (2 by default), plus a read and hash of
the file every ``rehash_every`` polls in case a rewrite kept size and
modification time; and it needs no dependency (``watchdog``) and works on
file systems without inotify (NFS, some overlay set-ups). The kubelet
itself takes up to a minute to update a mounted ConfigMap, so two seconds
more do not matter.

The callback runs only when the *content* differs from the last seen
(a ``touch`` does not reload), once per change: an invalid edit is
reported once, not every two seconds, and the next edit is tried again. A
file that disappears is reported once too (the reload fails and the running
configuration stays); when it comes back, its content is compared as usual.

**A ConfigMap** (``--config-configmap``) is watched through the API with
:class:`~dyntoolset.kube.configmaps.ConfigMapWatch` (a list, then a watch
on that one object, relisting after errors); :class:`ConfigMapSourceWatch`
calls back when the watched key's text changes or the ConfigMap is deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from dyntoolset.kube.config_source import ConfigMapRef
from dyntoolset.kube.configmaps import ConfigMapWatch

__all__ = ["DEFAULT_POLL_INTERVAL", "MISSING", "ConfigMapSourceWatch", "FileWatch", "digest"]

log = logging.getLogger("dyntoolset.reload")

#: Seconds between two looks at the configuration file.
DEFAULT_POLL_INTERVAL = 2.0

#: The digest of a file or ConfigMap key that does not exist.
MISSING = "missing"


def digest(text: str | bytes) -> str:
    """The content digest the watches compare (SHA-256, hex)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


class FileWatch:
    """Poll ``path`` and call ``on_change()`` when its content changes.

    ``baseline`` is the digest (:func:`digest`) of the text the running
    configuration was loaded from, so a change between loading and the
    first poll is not missed; ``None`` takes the content found at the first
    poll as the baseline. ``poll()`` does one look (tests call it directly).
    """

    def __init__(
        self,
        path: str,
        on_change: Callable[[], object],
        *,
        baseline: str | None = None,
        interval: float = DEFAULT_POLL_INTERVAL,
        rehash_every: int = 15,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"poll interval must be above 0, got {interval}")
        self.path = path
        self.interval = interval
        self.rehash_every = max(1, rehash_every)
        self._on_change = on_change
        self._digest = baseline
        self._stat: tuple[int, ...] | None = None
        self._polls = 0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        #: Times ``on_change`` was called.
        self.changes = 0

    def start(self) -> None:
        """Poll in a background thread."""
        if self._thread is not None:
            raise RuntimeError("FileWatch already started")
        self._thread = threading.Thread(
            target=self._run, name="dyntoolset-watch-config-file", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop polling and wait for the thread (a reload in progress finishes first)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.poll()
            except Exception:  # a bug must not end the watch silently
                log.exception("watching %s failed", self.path)

    def poll(self) -> bool:
        """Look at the file once; call ``on_change`` and return ``True`` when its content changed."""
        self._polls += 1
        stat = self._stat_of()
        if stat == self._stat and self._polls % self.rehash_every and self._digest is not None:
            return False
        self._stat = stat
        current = MISSING if stat is None else self._read_digest()
        if current is None:  # vanished between stat and read: look again next time
            self._stat = None
            return False
        if self._digest is None:
            self._digest = current
            return False
        if current == self._digest:
            return False
        self._digest = current
        if current == MISSING:
            log.warning(
                "configuration file %s disappeared; keeping the running configuration",
                self.path,
                extra={"dyntoolset": {"event": "config_file_missing", "path": self.path}},
            )
        self.changes += 1
        self._on_change()
        return True

    def _stat_of(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)  # follows config.yaml -> ..data/config.yaml -> ..2026_…
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _read_digest(self) -> str | None:
        try:
            with open(self.path, "rb") as stream:
                return digest(stream.read())
        except FileNotFoundError:
            return None
        except OSError:
            # Unreadable: let the reload say why (it reads the file the same way).
            return "unreadable"


class ConfigMapSourceWatch:
    """Watch the ``--config-configmap`` ConfigMap; call ``on_change()`` when the
    text under its key changes, or the ConfigMap or key disappears.

    ``baseline`` is the digest of the text the running configuration was
    loaded from (``None``: whatever the first list finds).
    """

    def __init__(
        self,
        api_client: Any,
        ref: ConfigMapRef,
        on_change: Callable[[], object],
        *,
        baseline: str | None = None,
        **watch_options: Any,
    ) -> None:
        self.ref = ref
        self._on_change = on_change
        self._digest = baseline
        self._lock = threading.Lock()
        self.changes = 0
        self.watch = ConfigMapWatch(
            api_client, ref.namespace, ref.name, self._event, **watch_options
        )

    def start(self) -> None:
        """Start watching in a background thread."""
        self.watch.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop watching and wait for the thread."""
        self.watch.stop(timeout)

    def _event(self, reason: str, obj: dict[str, Any] | None) -> None:
        data = (obj or {}).get("data") if reason != "configmap-deleted" else None
        text = data.get(self.ref.key) if isinstance(data, dict) else None
        current = MISSING if text is None else digest(str(text))
        with self._lock:
            if self._digest is None:
                self._digest = current
                return
            if current == self._digest:
                return
            self._digest = current
            self.changes += 1
        self._on_change()
