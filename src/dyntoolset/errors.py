"""Exceptions raised by dyntoolset.

Every error a user can cause (bad configuration, a broken plugin, a malformed
manifest, an invalid annotation) has its own type carrying enough context to
say *where* the problem is and *what* to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class DyntoolsetError(Exception):
    """Base class of every error dyntoolset raises on purpose."""


@attrs.frozen
class Problem:
    """One configuration problem: a JSONPath-like location and a message."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(DyntoolsetError):
    """The configuration is invalid; ``problems`` lists every problem found.

    ``str(error)`` is one line per problem, each ``$.path: message``, so a
    user fixes everything in one round instead of one error per restart.
    """

    def __init__(self, problems: Sequence[Problem], source: str = "") -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        head = f"invalid configuration{where} ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class PluginLoadError(DyntoolsetError):
    """A plugin could not be imported or failed validation.

    The plugin is skipped; other plugins keep working.
    """

    def __init__(self, plugin: str, distribution: str, reason: str) -> None:
        self.plugin = plugin
        self.distribution = distribution
        self.reason = reason
        super().__init__(f"plugin {plugin!r} from {distribution}: {reason}")


class DuplicateNameError(PluginLoadError):
    """Two plugins claim the same name; the message names both sides."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        self.kind = kind
        self.name = name
        self.first = first
        self.second = second
        DyntoolsetError.__init__(
            self,
            f"{kind} name {name!r} is claimed by both {first} and {second}; "
            f"uninstall one of them or pin the distributions to load with "
            f"DYNTOOLSET_LOAD_PLUGINS",
        )
        self.plugin = name
        self.distribution = second
        self.reason = str(self)


class ManifestError(DyntoolsetError):
    """A Kubernetes manifest could not be read; says which file and where."""

    def __init__(self, source: str, message: str, position: str = "") -> None:
        self.source = source
        self.position = position
        self.message = message
        where = f"{source}:{position}" if position else source
        super().__init__(f"{where}: {message}")


class InvalidService(DyntoolsetError):
    """Raised by a detector when a Service opts in but is malformed.

    The discovery engine skips the Service with reason ``invalid`` and logs
    ``reason``; it is not counted as a detector error.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RenderError(DyntoolsetError):
    """A renderer failed (raised, or returned something that is not text).

    No document set is produced, so no partial ConfigMap is ever written:
    the previous one stays in place until the renderer is fixed or disabled
    (``output.formats``).
    """

    def __init__(self, renderer: str, origin: str, reason: str) -> None:
        self.renderer = renderer
        self.origin = origin
        self.reason = reason
        super().__init__(
            f"renderer {renderer!r} ({origin}) failed: {reason}; no ConfigMap is produced "
            f"and the previous one is kept"
        )


class InvalidConfigMapError(DyntoolsetError):
    """The existing output ConfigMap has the wrong shape and cannot be merged into.

    ``problems`` are ``$.path: message`` texts. Nothing is written: a
    ConfigMap the merge does not understand is left for a person to fix.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "the existing ConfigMap cannot be merged into: " + "; ".join(self.problems)
        )


class DocumentTooLargeError(DyntoolsetError):
    """The generated ConfigMap would exceed the 1 MiB Kubernetes limit."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"generated ConfigMap data is {size} bytes, over the {limit}-byte limit; "
            f"the previous ConfigMap is kept. Narrow discovery with namespace filters "
            f"or disable output formats"
        )


class UnknownFormatError(DyntoolsetError, KeyError):
    """An output format that no installed renderer provides; names the installed ones."""

    def __init__(self, name: str, installed: Sequence[str]) -> None:
        self.name = name
        self.installed = tuple(installed)
        DyntoolsetError.__init__(
            self,
            f"unknown output format {name!r}; installed: {', '.join(self.installed) or 'none'}",
        )

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def describe(value: object) -> str:
    """``repr(value)``, shortened for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
