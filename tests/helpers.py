"""Test-only detectors and renderers shared by the core tests."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from dyntoolset.detector import DetectContext, choose_port
from dyntoolset.model import Discovered, Service
from dyntoolset.plugin import Detector, InvalidService, Renderer


class LabelDetector(Detector):
    """Matches Services whose ``app`` label equals the detector's name."""

    name = "alpha"
    description = "test detector"
    default_priority = 10
    health_path = "/healthz"

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        if service.labels.get("app") != self.name:
            return None
        port = choose_port(service)
        if port is None:
            return None
        return self.discovered(service, port, ctx)


class BetaDetector(LabelDetector):
    name = "beta"
    default_priority = 20


class GreedyDetector(LabelDetector):
    """Matches every Service that has a port."""

    name = "greedy"
    default_priority = 30

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        port = choose_port(service)
        return self.discovered(service, port, ctx) if port else None


class BrokenDetector(LabelDetector):
    name = "broken"
    default_priority = 0

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        raise RuntimeError("boom")


class PickyDetector(LabelDetector):
    """Raises InvalidService for Services labelled app=picky with a bad 'mode' label."""

    name = "picky"
    default_priority = 5

    @attrs.frozen
    class Settings:
        mode: str = "strict"
        limit: int = 3

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        if service.labels.get("app") != "picky":
            return None
        if service.labels.get("mode", ctx.settings.mode) != ctx.settings.mode:
            raise InvalidService(f"label mode must be {ctx.settings.mode!r}")
        port = choose_port(service)
        return self.discovered(service, port, ctx) if port else None


class ListRenderer(Renderer):
    """Renders one line per discovered service."""

    name = "lines"
    data_key = "lines.txt"
    description = "test renderer"

    def render(self, discovered: Sequence[Discovered]) -> str:
        return "".join(f"{d.key} {d.type} {d.endpoint}\n" for d in discovered)
