"""Building blocks for :meth:`Detector.toolsets <dyntoolset.detector.Detector.toolsets>`."""

from __future__ import annotations

from urllib.parse import urlsplit

from dyntoolset.model import Discovered, ToolsetSpec


def http_toolset(found: Discovered) -> ToolsetSpec:
    """A generic read-only HTTP toolset limited to ``found``'s host."""
    host = urlsplit(found.endpoint).netloc
    what = found.description or f"{found.type} service"
    return ToolsetSpec(
        kind="http",
        config={"endpoints": [{"hosts": [host], "paths": ["*"], "methods": ["GET"]}]},
        description=f"{what} {found.service.name} in namespace {found.service.namespace}",
        llm_instructions=(
            f"Read-only HTTP API of the {found.type} service {found.service.key}, "
            f"base URL {found.endpoint}. Use GET requests only."
        ),
    )
