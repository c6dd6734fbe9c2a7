"""Workload 2: classification of 50,000 Services by every built-in and plugin detector.

In one process (one core): snapshots are built first, then ``Engine.discover``
runs over them with the default configuration and with a full one (namespace
include and exclude patterns and an annotation rule on every detector),
alternately. Measured in CPU time: on a shared machine the wall time of a
single-threaded loop also counts other processes' turns on the core. Targets: at least 200,000 Services/s with the defaults, and the
full configuration costing less than 5% more than the defaults.

The full configuration's rules are chosen to let almost every Service through
to the detectors, so that the figure is the cost of evaluating the rules, not
a saving from Services they filter out.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.cluster import cluster_objects
from benchmarks.harness import Figure, alternate, at_least, below, cpu_timed, info, median
from dyntoolset.pipeline import Engine
from dyntoolset.plugins import load_plugins
from dyntoolset.snapshot import service_from_object

#: Rules on every detector: inclusions, exclusions, an OR-clause of annotations.
NAMESPACES = '["team*", "monitoring", "!kube-*", "!team49?-qa"]'
ANNOTATIONS = '["meta.helm.sh/release-name | kubernaut.io/toolset | prometheus.io/scrape"]'


def full_config(detector_names: list[str]) -> str:
    return "detectors:\n" + "".join(
        f"  {name}:\n    namespaces: {NAMESPACES}\n    required_annotations: {ANNOTATIONS}\n"
        for name in detector_names
    )


def run(quick: bool) -> list[Figure]:
    count = 2_000 if quick else 50_000
    # Each run is a fifth of a second: many of them, so the medians of a
    # two per cent difference are not the machine's noise.
    runs = 1 if quick else 21
    services = [service_from_object(obj) for obj in cluster_objects(count)]
    plugins = load_plugins()
    default = Engine.load(None, plugins)
    names = sorted(default.config.detectors)
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(full_config(names))
        full = Engine.load(path, plugins)
    found = {
        "default": len(default.discover(services).discovered),
        "full": len(full.discover(services).discovered),
    }
    times = alternate(
        {
            "default": lambda: cpu_timed(lambda: default.discover(services)),
            "full": lambda: cpu_timed(lambda: full.discover(services)),
        },
        runs,
    )
    base, configured = median(times["default"]), median(times["full"])
    notes = f"{count} Services, {len(names)} detectors, CPU time, median of {runs}"
    return [
        at_least("Services/s, defaults", count / base, 200_000, "/s", notes),
        below(
            "full configuration overhead",
            (configured / base - 1) * 100,
            5,
            "%",
            f"found {found['full']} with the rules, {found['default']} without",
        ),
        info("Services/s, full configuration", count / configured, "/s"),
    ]
