"""The :class:`Renderer` base class: turns discovered services into one output document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from dyntoolset.model import Discovered


class Renderer:
    """Renders discovered services into one data key of the output ConfigMap.

    ``name`` selects the renderer in ``output.formats`` and on the command line
    (``dyntoolset discover -o NAME``); ``data_key`` is the ConfigMap key it
    writes. :meth:`render` must be deterministic (same input, byte-identical
    output) and build its document as data serialised with ``yaml.safe_dump``
    or ``json.dumps``, never by formatting strings.
    """

    name: ClassVar[str]
    data_key: ClassVar[str]
    version: ClassVar[str] = "0.0.0"
    description: ClassVar[str] = ""

    def render(self, discovered: Sequence[Discovered]) -> str:
        """Return the document for ``discovered`` (already sorted by namespace/name)."""
        raise NotImplementedError
