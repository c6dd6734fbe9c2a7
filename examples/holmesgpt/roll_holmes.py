#!/usr/bin/env python3
"""Restart HolmesGPT when the toolsets dyntoolset writes for it change.

HolmesGPT reads its custom toolset file when it starts. This hook keeps the
HolmesGPT Deployment's pod template annotated with the SHA-256 of the
``custom_toolset.yaml`` key of dyntoolset's ConfigMap; when the key's content
changes, the annotation changes, and that rolls the Deployment (new pods
mount the new content). Content that did not change causes no write, so it
is safe to run as often as you like: from a loop (``--interval``), a CronJob,
or a CI step after each deploy. The annotation is the only state.

Only the standard library and ``kubectl`` (on ``PATH``, or ``--kubectl``)
are needed. The RBAC it needs is in ``rbac.yaml`` next to it: ``get`` on the
ConfigMap, ``get`` and ``patch`` on the Deployment. Exit status: 0 done (rolled
or already current), 1 a kubectl call failed or the ConfigMap lacks the key
(the message says which), 2 usage.

    python3 roll_holmes.py -n kubernaut-system --deployment holmes-holmes
    python3 roll_holmes.py -n kubernaut-system --deployment holmes-holmes --interval 30
    python3 roll_holmes.py -n kubernaut-system --print-checksum   # for helm --set-string
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from typing import Any

#: The pod-template annotation holding the checksum; examples/holmesgpt/values.yaml
#: sets the same one through the chart's podAnnotations.
ANNOTATION = "dyntoolset.io/toolset-checksum"
#: The data key of dyntoolset's holmesgpt renderer.
KEY = "custom_toolset.yaml"


class HookError(Exception):
    """A failure worth one line on stderr: what failed and why."""


def kubectl_json(kubectl: str, *args: str) -> Any:
    """``kubectl ARGS -o json``, parsed; :class:`HookError` with kubectl's message on failure."""
    try:
        result = subprocess.run(
            [kubectl, *args, "-o", "json"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise HookError(f"cannot run {kubectl}: {err}") from err
    if result.returncode != 0:
        raise HookError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def toolset_checksum(kubectl: str, namespace: str, configmap: str, key: str = KEY) -> str:
    """The SHA-256 (hex) of ``key`` in the ConfigMap: what HolmesGPT would load."""
    obj = kubectl_json(kubectl, "get", "configmap", configmap, "-n", namespace)
    data = obj.get("data") or {}
    if key not in data:
        raise HookError(
            f"configmap {namespace}/{configmap} has no key {key!r} (keys: {sorted(data)}); "
            f"is the holmesgpt format in dyntoolset's output.formats?"
        )
    return hashlib.sha256(data[key].encode("utf-8")).hexdigest()


def deployed_checksum(kubectl: str, namespace: str, deployment: str) -> str | None:
    """The checksum the Deployment's pods were started with, ``None`` when never set."""
    obj = kubectl_json(kubectl, "get", "deployment", deployment, "-n", namespace)
    annotations = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
    value = (annotations or {}).get(ANNOTATION)
    return str(value) if value else None


def roll_patch(checksum: str) -> str:
    """The merge patch that records ``checksum`` in the pod template (and so rolls it)."""
    body = {"spec": {"template": {"metadata": {"annotations": {ANNOTATION: checksum}}}}}
    return json.dumps(body, separators=(",", ":"))


def sync(kubectl: str, namespace: str, configmap: str, deployment: str) -> str:
    """One pass: roll the Deployment if the toolsets changed. Returns what happened."""
    wanted = toolset_checksum(kubectl, namespace, configmap)
    current = deployed_checksum(kubectl, namespace, deployment)
    if current == wanted:
        return f"deployment/{deployment} already runs toolsets {wanted[:12]}"
    kubectl_json(
        kubectl, "patch", "deployment", deployment, "-n", namespace,
        "--type", "merge", "-p", roll_patch(wanted),
    )  # fmt: skip
    was = current[:12] if current else "unknown"
    return f"deployment/{deployment} rolled: toolsets {was} -> {wanted[:12]}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--namespace", required=True, help="namespace of both objects")
    parser.add_argument("--configmap", default="kubernaut-toolset-config", help="%(default)s")
    parser.add_argument("--deployment", help="HolmesGPT's Deployment (chart: RELEASE-holmes)")
    parser.add_argument("--kubectl", default="kubectl", help="the kubectl binary")
    parser.add_argument("--interval", type=float, help="repeat every SECONDS instead of once")
    parser.add_argument(
        "--print-checksum", action="store_true", help="print the ConfigMap's checksum and exit"
    )
    args = parser.parse_args(argv)
    if not args.print_checksum and not args.deployment:
        parser.error("--deployment is required (unless --print-checksum)")
    if args.interval is not None and not args.interval > 0:
        parser.error("--interval must be a positive number of seconds")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.print_checksum:
        try:
            print(toolset_checksum(args.kubectl, args.namespace, args.configmap))
        except HookError as err:
            print(f"roll_holmes: {err}", file=sys.stderr)
            return 1
        return 0
    while True:
        try:
            print(sync(args.kubectl, args.namespace, args.configmap, args.deployment), flush=True)
        except HookError as err:
            print(f"roll_holmes: {err}", file=sys.stderr, flush=True)
            if args.interval is None:
                return 1  # a loop keeps going: the next pass may succeed
        if args.interval is None:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
