"""Build the Grafana dashboard as code with ``grafana-foundation-sdk`` (developers only).

``python -m dyntoolset.dashboard.build`` writes the dashboard to the package
(``src/dyntoolset/dashboard/dyntoolset.json``) and to
``examples/observability/grafana-dashboard.json``; ``--check`` only compares.
The SDK comes with ``pip install -e '.[dashboard]'`` (the ``test`` extra has it
too, for the test that keeps the committed files equal to this output); the
runtime never imports this module.

Why the SDK rather than hand-written JSON: its builders are generated from
Grafana's own schema (typed panel options, field config and query models), so
a wrong option name or type fails here instead of in a user's Grafana.

Every query selects ``job=~"$job"`` and uses the ``${datasource}`` variable:
no data source UID is written into the file. Queries on metrics of the
configuration reload (issue 11) are built here like any other; the
integration test lists them in ``AWAITING_RELOAD`` until those metrics exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from grafana_foundation_sdk.builders import common as common_builder
    from grafana_foundation_sdk.builders import dashboard as dash
    from grafana_foundation_sdk.builders import prometheus, stat, timeseries
    from grafana_foundation_sdk.cog.builder import Builder
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models.dashboard import (
        DataSourceRef,
        GridPos,
        Panel,
        VariableHide,
        VariableOption,
        VariableRefresh,
    )
except ImportError as exc:  # pragma: no cover - exercised by hand without the extra
    raise ImportError(
        "building the dashboard needs grafana-foundation-sdk: pip install -e '.[dashboard]'"
    ) from exc

__all__ = ["EXAMPLE_PATH", "PACKAGE_PATH", "build", "main", "render"]

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_PATH = Path(__file__).resolve().with_name("dyntoolset.json")
EXAMPLE_PATH = ROOT / "examples" / "observability" / "grafana-dashboard.json"

#: Every query goes to the data source the importer picks, never to a fixed UID.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
#: The job label filter every selector carries.
JOB = 'job=~"$job"'
#: Grafana's grid is 24 units wide.
WIDTH = 24


def selector(metric: str, matchers: str = "") -> str:
    """``metric{job=~"$job",matchers}``: one place for the dashboard's filter."""
    inner = ",".join(m for m in (JOB, matchers) if m)
    return f"{metric}{{{inner}}}"


def rate(metric: str, matchers: str = "") -> str:
    return f"rate({selector(metric, matchers)}[$__rate_interval])"


def quantile(q: float, histogram: str, by: str = "") -> str:
    labels = ", ".join(x for x in ("le", by) if x)
    return f"histogram_quantile({q}, sum by ({labels}) ({rate(histogram + '_bucket')}))"


def query(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()


class Layout:
    """Places panels left to right, wrapping at the grid's width."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, width: int, height: int) -> GridPos:
        if self.x + width > WIDTH:
            self.newline()
        pos = GridPos(h=height, w=width, x=self.x, y=self.y)
        self.x += width
        self.row_height = max(self.row_height, height)
        return pos

    def newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def row(self, title: str) -> dash.Row:
        self.newline()
        pos = self.place(WIDTH, 1)
        self.newline()
        return dash.Row(title).grid_pos(pos).id(self.take_id())

    def take_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def graph(
    layout: Layout,
    title: str,
    description: str,
    unit: str,
    queries: Sequence[tuple[str, str]],
    *,
    width: int = 12,
    stacked: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .id(layout.take_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .grid_pos(layout.place(width, 8))
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if stacked:
        panel = panel.stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(query(expr, legend, chr(ord("A") + index)))
    return panel


def single(
    layout: Layout,
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "none",
    legend: str = "",
    text_mode: common.BigValueTextMode = common.BigValueTextMode.VALUE,
    width: int = 3,
) -> stat.Panel:
    return (
        stat.Panel()
        .id(layout.take_id())
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .grid_pos(layout.place(width, 4))
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(text_mode)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(query(expr, legend, "A").instant())
    )


def with_panels(board: dash.Dashboard, panels: Sequence[Builder[Panel]]) -> dash.Dashboard:
    for panel in panels:
        board = board.with_panel(panel)
    return board


def build() -> dict[str, Any]:
    """The dashboard as a JSON-ready dictionary."""
    layout = Layout()
    board = (
        dash.Dashboard("dyntoolset")
        .description(
            "Discovery, health checks, ConfigMap reconciles and configuration reloads of "
            "dyntoolset (docs/observability.md)."
        )
        .tags(["dyntoolset", "kubernetes"])
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(
            dash.DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
            .current(VariableOption(selected=True, text="default", value="default"))
        )
        .with_variable(
            dash.QueryVariable("job")
            .label("Job")
            .datasource(DATASOURCE)
            .query("label_values(dynamic_toolset_build_info, job)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".+")
            .multi(True)
            .current(VariableOption(selected=True, text="All", value="$__all"))
            .hide(VariableHide.DONT_HIDE)
        )
    )

    board = board.with_row(layout.row("State"))
    board = with_panels(
        board,
        [
            single(
                layout,
                "Version",
                "dynamic_toolset_build_info: the dyntoolset and Python versions running.",
                selector("dynamic_toolset_build_info"),
                legend="{{version}} (Python {{python}})",
                text_mode=common.BigValueTextMode.NAME,
                width=4,
            ),
            single(
                layout,
                "Leaders",
                "Replicas that may write the ConfigMap (dynamic_toolset_leader_election_is_leader); "
                "exactly 1 is healthy.",
                f"sum({selector('dynamic_toolset_leader_election_is_leader')})",
            ),
            single(
                layout,
                "Caches synced",
                "Replicas whose Service cache has listed and is watching (dynamic_toolset_cache_synced).",
                f"sum({selector('dynamic_toolset_cache_synced')})",
            ),
            single(
                layout,
                "Services cached",
                "Services in the watch cache (dynamic_toolset_cache_services).",
                f"max({selector('dynamic_toolset_cache_services')})",
            ),
            single(
                layout,
                "Last successful reconcile",
                "Time since the last successful reconcile of any replica; the leader reconciles "
                "at least once per resync interval.",
                f"time() - max({selector('dynamic_toolset_configmap_last_success_timestamp_seconds')})",
                unit="s",
            ),
            single(
                layout,
                "Plugin distributions",
                "Installed distributions whose detectors or renderers loaded "
                "(dynamic_toolset_plugin_info); load errors beside it.",
                f"count(count by (distribution) ({selector('dynamic_toolset_plugin_info')}))",
                width=2,
            ),
            single(
                layout,
                "Plugin load errors",
                "Plugins that failed to load and were skipped (dynamic_toolset_plugin_load_errors).",
                f"max({selector('dynamic_toolset_plugin_load_errors')})",
                width=2,
            ),
        ],
    )

    board = board.with_row(layout.row("Discovery"))
    board = with_panels(
        board,
        [
            graph(
                layout,
                "Discovery duration per detector",
                "Time one detector spends in one discovery run "
                "(dynamic_toolset_detector_duration_seconds), 50th and 95th percentile.",
                "s",
                [
                    (
                        quantile(0.5, "dynamic_toolset_detector_duration_seconds", "detector"),
                        "{{detector}} p50",
                    ),
                    (
                        quantile(0.95, "dynamic_toolset_detector_duration_seconds", "detector"),
                        "{{detector}} p95",
                    ),
                ],
            ),
            graph(
                layout,
                "Detector runs and failures",
                "Detector runs per second (successful or not) and Services a detector raised on "
                "(dynamic_toolset_detector_errors_total), by error type.",
                "ops",
                [
                    (
                        f"sum by (detector) ({rate('dynamic_toolset_detector_duration_seconds_count')})",
                        "{{detector}} runs",
                    ),
                    (
                        f"sum by (detector, error_type) ({rate('dynamic_toolset_detector_errors_total')})",
                        "{{detector}} failed: {{error_type}}",
                    ),
                ],
            ),
            graph(
                layout,
                "Services found by detector",
                "Services each detector matched in the last discovery run "
                "(dynamic_toolset_detector_services_found).",
                "none",
                [
                    (
                        f"max by (detector) ({selector('dynamic_toolset_detector_services_found')})",
                        "{{detector}}",
                    )
                ],
                width=8,
                stacked=True,
            ),
            graph(
                layout,
                "Services discovered by namespace",
                "Services discovered per second, summed over discovery runs "
                "(dynamic_toolset_discovery_services_total); namespaces beyond the limit are 'other'.",
                "ops",
                [
                    (
                        f"sum by (namespace) ({rate('dynamic_toolset_discovery_services_total')})",
                        "{{namespace}}",
                    )
                ],
                width=8,
                stacked=True,
            ),
            graph(
                layout,
                "Skips by reason",
                "Services that produced no toolset, per second, by reason "
                "(dynamic_toolset_discovery_skipped_total).",
                "ops",
                [
                    (
                        f"sum by (reason) ({rate('dynamic_toolset_discovery_skipped_total')})",
                        "{{reason}}",
                    )
                ],
                width=8,
            ),
        ],
    )

    board = board.with_row(layout.row("Health checks"))
    board = with_panels(
        board,
        [
            graph(
                layout,
                "Health-check failures by reason",
                "Failed health checks per second, by detector and reason "
                "(dynamic_toolset_health_check_failures_total).",
                "ops",
                [
                    (
                        f"sum by (detector, reason) ({rate('dynamic_toolset_health_check_failures_total')})",
                        "{{detector}}: {{reason}}",
                    )
                ],
            ),
            graph(
                layout,
                "Health checks by result",
                "Health checks performed per second (cached results not counted), by detector and "
                "result (dynamic_toolset_health_checks_total), and rounds cut short by the deadline.",
                "ops",
                [
                    (
                        f"sum by (detector, result) ({rate('dynamic_toolset_health_checks_total')})",
                        "{{detector}}: {{result}}",
                    ),
                    (
                        f"sum({rate('dynamic_toolset_health_check_deadline_exceeded_total')})",
                        "deadline exceeded",
                    ),
                ],
            ),
        ],
    )

    board = board.with_row(layout.row("ConfigMap"))
    board = with_panels(
        board,
        [
            graph(
                layout,
                "Reconcile outcomes",
                "ConfigMap reconciles per second, by result "
                "(dynamic_toolset_configmap_reconciliations_total), and failures by error type.",
                "ops",
                [
                    (
                        f"sum by (result) ({rate('dynamic_toolset_configmap_reconciliations_total')})",
                        "{{result}}",
                    ),
                    (
                        f"sum by (error_type) ({rate('dynamic_toolset_configmap_update_errors_total')})",
                        "failed: {{error_type}}",
                    ),
                ],
                width=8,
            ),
            graph(
                layout,
                "Reconcile duration",
                "Duration of one ConfigMap reconcile "
                "(dynamic_toolset_configmap_reconcile_duration_seconds).",
                "s",
                [
                    (quantile(0.5, "dynamic_toolset_configmap_reconcile_duration_seconds"), "p50"),
                    (quantile(0.95, "dynamic_toolset_configmap_reconcile_duration_seconds"), "p95"),
                ],
                width=8,
            ),
            graph(
                layout,
                "Drift",
                "Generated ConfigMap keys found edited or removed and restored "
                "(dynamic_toolset_configmap_drift_detections_total), per interval.",
                "none",
                [
                    (
                        f"sum(increase({selector('dynamic_toolset_configmap_drift_detections_total')}"
                        "[$__rate_interval]))",
                        "keys restored",
                    )
                ],
                width=8,
            ),
        ],
    )

    board = board.with_row(layout.row("Configuration"))
    board = with_panels(
        board,
        [
            graph(
                layout,
                "Configuration reloads",
                "Reloads of the configuration per second, by result "
                "(dynamic_toolset_config_reloads_total); a failed reload keeps the previous one.",
                "ops",
                [
                    (
                        f"sum by (result) ({rate('dynamic_toolset_config_reloads_total')})",
                        "{{result}}",
                    )
                ],
                width=16,
            ),
            graph(
                layout,
                "Configuration generation",
                "The generation of the configuration in use (dynamic_toolset_config_generation); "
                "it moves with every applied reload.",
                "none",
                [
                    (
                        f"max by (instance) ({selector('dynamic_toolset_config_generation')})",
                        "{{instance}}",
                    )
                ],
                width=8,
            ),
        ],
    )

    encoded: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def render() -> str:
    """The dashboard as the text written to both files (stable: keys sorted)."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check``, compare) the packaged and the example dashboard."""
    parser = argparse.ArgumentParser(prog="python -m dyntoolset.dashboard.build")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a committed file differs; write nothing"
    )
    args = parser.parse_args(argv)
    text = render()
    stale = [p for p in (PACKAGE_PATH, EXAMPLE_PATH) if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path}: differs from the builder's output; run {parser.prog}", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
