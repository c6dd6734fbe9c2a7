"""Load a custom toolset file with HolmesGPT's own ToolsetManager and report what happened.

Runs under the *holmes* interpreter (see scripts/holmes-venv.sh), never under
pytest: it imports only HolmesGPT and the standard library. Usage::

    python holmes_probe.py FILE [--check] [--container]

Prints one JSON object on stdout:

``loaded``
    every toolset named in FILE, as HolmesGPT built it: class, type, enabled,
    status, error, and for multi-instance built-ins the instance names;
``invalid``
    every toolset HolmesGPT marked FAILED while *loading* (it replaces an entry
    it cannot construct by a FAILED placeholder), with the error;
``config_errors``
    per built-in toolset, instances whose config none of the toolset's config
    classes accepts (checked without network);
``http_tools``
    for ``type: http`` toolsets, the tool names after running their
    prerequisite check (which needs no network: we set no health_check_url).
``urls``
    per toolset, every URL in the config HolmesGPT holds after loading (values
    of keys ending in ``url`` and entries of ``hosts``), sorted: where the
    agent will send its requests.

With ``--check`` the prerequisite checks of every enabled toolset from FILE
run for real (network included) and ``loaded`` shows the resulting status.

With ``--container`` FILE is not handed to the ``ToolsetManager``: HolmesGPT
finds it itself, as in its container, through ``CUSTOM_TOOLSET_LOCATION``
(which the caller sets to FILE; the probe refuses to run otherwise).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from typing import Any

import yaml


def main(argv: list[str]) -> int:
    path = argv[1]
    full_check = "--check" in argv[2:]
    container = "--container" in argv[2:]
    if container and os.environ.get("CUSTOM_TOOLSET_LOCATION") != path:
        sys.exit(f"--container: CUSTOM_TOOLSET_LOCATION must be {path}")
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

    from holmes.core.tools import ToolsetStatusEnum, ToolsetType
    from holmes.core.toolset_manager import ToolsetManager

    with open(path, encoding="utf-8") as handle:
        names = list(yaml.safe_load(handle)["toolsets"])

    status_dir = tempfile.mkdtemp(prefix="holmes-probe-")
    manager = ToolsetManager(
        custom_toolsets=None if container else [path],  # type: ignore[list-item]
        toolset_status_location=os.path.join(status_dir, "status.json"),  # type: ignore[arg-type]
    )
    # The loading half of ToolsetManager.list_server_toolsets/refresh_toolset_status:
    # built-ins, then the custom file merged onto them, no network.
    toolsets = manager._list_all_toolsets(check_prerequisites=False, toolset_tags=None)
    by_name = {t.name: t for t in toolsets}

    # Before any prerequisite check only the placeholders HolmesGPT builds
    # for entries it could not construct are FAILED.
    invalid = {t.name: t.error or "" for t in toolsets if t.status == ToolsetStatusEnum.FAILED}
    missing = [name for name in names if name not in by_name]

    config_errors: dict[str, list[str]] = {}
    http_tools: dict[str, list[str]] = {}
    ours = [by_name[name] for name in names if name in by_name]
    for toolset in ours:
        if not toolset.enabled or toolset.name in invalid:
            continue
        if toolset.type == ToolsetType.HTTP:
            if not full_check:
                ToolsetManager.check_toolset_prerequisites([toolset], silent=True)
            http_tools[toolset.name] = [tool.name for tool in toolset.tools]
            continue
        classes = list(getattr(toolset, "config_classes", []) or [])
        config = toolset.config or {}
        instances = config.get("instances") or [config]
        for index, instance in enumerate(instances):
            flat = {k: v for k, v in instance.items() if k != "name"}
            errors = []
            for cls in classes:
                try:
                    cls(**flat)
                    break
                except Exception as err:  # noqa: BLE001 -- any rejection counts, whatever its class
                    errors.append(f"{cls.__name__}: {err}")
            else:
                if classes:
                    label = instance.get("name", f"#{index}")
                    config_errors.setdefault(toolset.name, []).append(f"{label}: {errors}")

    if full_check:
        ToolsetManager.check_toolset_prerequisites(
            [t for t in ours if t.enabled], silent=True, timeout_seconds=30
        )
        for toolset in ours:
            if toolset.type == ToolsetType.HTTP and toolset.enabled:
                http_tools[toolset.name] = [tool.name for tool in toolset.tools]

    loaded: dict[str, Any] = {}
    urls: dict[str, list[str]] = {}
    for toolset in ours:
        found: list[str] = []
        _collect_urls(toolset.config, "", found)
        urls[toolset.name] = sorted(found)
        config = toolset.config if isinstance(toolset.config, dict) else {}
        loaded[toolset.name] = {
            "class": type(toolset).__name__,
            "type": toolset.type.value if toolset.type else None,
            "enabled": toolset.enabled,
            "status": toolset.status.value,
            "error": toolset.error,
            "instances": [i.get("name") for i in config.get("instances") or []],
            "tools": sorted(tool.name for tool in toolset.tools),
        }

    json.dump(
        {
            "loaded": loaded,
            "missing": missing,
            "invalid": invalid,
            "config_errors": config_errors,
            "http_tools": http_tools,
            "urls": urls,
        },
        sys.stdout,
        indent=2,
        sort_keys=True,
    )
    sys.stdout.write("\n")
    return 0


def _collect_urls(value: Any, key: str, out: list[str]) -> None:
    if hasattr(value, "model_dump"):  # an HTTP toolset's config, once checked
        value = value.model_dump()
    if isinstance(value, dict):
        for k, v in value.items():
            _collect_urls(v, str(k), out)
    elif isinstance(value, list):
        for item in value:
            _collect_urls(item, key, out)
    elif isinstance(value, str) and (key.endswith("url") or key == "hosts"):
        out.append(value)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
