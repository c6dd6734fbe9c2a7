"""Validation of rendered objects against the Kubernetes OpenAPI schema and the CRDs' schemas.

Built-in kinds go to the strict schemas that ``kubernetes-validate`` ships of Kubernetes
1.32 (the kubectl of these machines): a misspelt or misplaced field is an
error, as with ``kubectl apply --validate=strict``. ServiceMonitor and
PrometheusRule are checked against the ``openAPIV3Schema`` of the Prometheus
Operator's CRDs in ``crds/`` (where they come from: ``crds/README.md``), made
strict the same way: every object schema that lists ``properties`` and does
not preserve unknown fields refuses the others.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

KUBERNETES_VERSION = "1.32.0"
CRDS = Path(__file__).parent / "crds"


def _strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` wherever it lists the allowed properties."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Any]:
    """``(apiVersion, kind)`` → strict JSON schema, from every CRD in ``crds/``."""
    schemas: dict[tuple[str, str], Any] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                # metadata is the API server's ObjectMeta, validated as such elsewhere.
                schema["properties"]["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return schemas


@functools.cache
def _builtin_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    """A validator of kubernetes-validate's strict schema for the kind (None: no such schema).

    Built once per kind: ``kubernetes_validate.validate`` reads the whole
    definitions file for every object, which made each rendering cost a second.
    """
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    directory = schemas / f"v{KUBERNETES_VERSION}-local-strict"
    # rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1 (the package's file naming).
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = directory / f"{kind.lower()}-{group_version}.json"
    if not path.exists():
        return None
    schema = json.loads(path.read_text())
    definitions = json.loads((directory / "_definitions.json").read_text())
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def problems(obj: dict[str, Any]) -> list[str]:
    """What is wrong with ``obj`` for the API server, as ``$.path: message`` lines (empty: valid)."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    crd = crd_schemas().get(key)
    validator = jsonschema.Draft7Validator(crd) if crd is not None else _builtin_validator(*key)
    if validator is None:
        return [f"no schema for {key[1]} {key[0]} in Kubernetes {KUBERNETES_VERSION}"]
    return [
        f"$.{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(obj)
    ]


def assert_valid(objects: list[dict[str, Any]]) -> None:
    """Every object validates; the failure lists each invalid object with its problems."""
    bad = {
        f"{o.get('kind')} {o.get('metadata', {}).get('name')}": p
        for o in objects
        if (p := problems(o))
    }
    assert bad == {}, f"objects the API server would refuse: {bad}"
