"""Shared inputs for the benchmarks: a synthetic cluster of realistic Services."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dyntoolset.manifests import read_manifests

EXAMPLE = Path(__file__).parent.parent / "examples" / "cluster"


def cluster_objects(count: int, seed: int = 7) -> list[dict]:
    """``count`` Service objects: the example cluster's shapes, renamed into many namespaces."""
    shapes = [o.obj for o in read_manifests([str(EXAMPLE)]).objects if o.kind == "Service"]
    rng = random.Random(seed)
    objects = []
    for index in range(count):
        obj = json.loads(json.dumps(rng.choice(shapes)))
        obj["metadata"]["namespace"] = f"team-{index % 500}"
        obj["metadata"]["name"] = f"{obj['metadata']['name']}-{index}"
        obj["metadata"]["resourceVersion"] = str(index)
        obj["metadata"]["uid"] = f"uid-{index}"
        objects.append(obj)
    return objects


@pytest.fixture(scope="session")
def objects_10k() -> list[dict]:
    return cluster_objects(10_000)
