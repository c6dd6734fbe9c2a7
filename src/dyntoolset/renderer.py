"""The :class:`Renderer` base class: turns discovered services into one output document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

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

    def apply_overrides(self, document: str, overrides: Mapping[str, Any]) -> str:
        """Return ``document`` with the operator's ``overrides.yaml`` applied.

        ``overrides`` is the parsed ``overrides.yaml`` of the output ConfigMap
        (a mapping). The default ignores it; a renderer whose consumer reads
        only this one document (HolmesGPT) merges its part of it, so what an
        operator wrote by hand reaches the agent. Raise ``ValueError`` with a
        ``$.path: message`` text when the overrides cannot be applied: the
        document is then written without them and the problem reported.
        """
        return document
