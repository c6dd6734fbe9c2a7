"""The configuration read from a ConfigMap through the API (``--config-configmap``).

``NAMESPACE/NAME[:KEY]`` names the ConfigMap and its data key (default
``config.yaml``). The text read goes through exactly the same parse and
validation as a file (:func:`dyntoolset.config.load_config_text`);
only reading differs:

* a missing ConfigMap means the defaults, with a log line (as a missing file);
* a missing key is a :class:`~dyntoolset.errors.ConfigError` naming the
  ConfigMap and key (the API server already caps a ConfigMap at 1 MiB, the
  size cap of configuration files);
* an API failure is a :class:`ConfigSourceError`: temporary ones (5xx, 429,
  connection errors) are retried a few times first; 401/403 say which RBAC
  rule is missing.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import attrs
from kubernetes import client as k8s

from dyntoolset.errors import ConfigError, DyntoolsetError, Problem
from dyntoolset.kube.errors import Backoff, classify

__all__ = ["DEFAULT_KEY", "ConfigMapRef", "ConfigSourceError", "parse_ref", "read_config_configmap"]

log = logging.getLogger("dyntoolset.config")

#: The data key read when ``--config-configmap`` names none.
DEFAULT_KEY = "config.yaml"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class ConfigSourceError(DyntoolsetError):
    """The ConfigMap could not be read (the API refused or did not answer)."""


@attrs.frozen
class ConfigMapRef:
    """Where the configuration lives: ``namespace/name``, data key ``key``."""

    namespace: str
    name: str
    key: str = DEFAULT_KEY

    def __str__(self) -> str:
        return f"configmap {self.namespace}/{self.name}:{self.key}"


def parse_ref(value: str) -> ConfigMapRef:
    """Parse ``NAMESPACE/NAME[:KEY]``; ``ValueError`` says what is wrong with it."""
    where, colon, key = value.partition(":")
    namespace, slash, name = where.partition("/")
    if not slash:
        raise ValueError(f"{value!r}: expected NAMESPACE/NAME[:KEY], e.g. kube-system/dyntoolset")
    if not _DNS_LABEL.fullmatch(namespace) or len(namespace) > 63:
        raise ValueError(f"{value!r}: namespace {namespace!r} is not a DNS label")
    if not _DNS_SUBDOMAIN.fullmatch(name) or len(name) > 253:
        raise ValueError(f"{value!r}: ConfigMap name {name!r} is not a DNS subdomain name")
    if colon and (not _DATA_KEY.fullmatch(key) or len(key) > 253):
        raise ValueError(
            f"{value!r}: key {key!r} is not a valid ConfigMap key (letters, digits, '-', '_', '.')"
        )
    return ConfigMapRef(namespace, name, key or DEFAULT_KEY)


def read_config_configmap(
    api_client: Any,
    ref: ConfigMapRef,
    *,
    request_timeout: tuple[float, float] = (5.0, 15.0),
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, str]:
    """``(text, source)`` of the configuration in ``ref``, as
    :func:`dyntoolset.config.read_config_text` gives for a file.

    A missing ConfigMap gives ``("", "defaults")`` and a log line. Raises
    :class:`ConfigError` for a missing key, and
    :class:`ConfigSourceError` when the API refuses, or still fails after
    ``attempts`` tries with the controller's backoff for temporary errors
    (a ``Retry-After`` is a floor).
    """
    source = str(ref)
    api: Any = k8s.CoreV1Api(api_client)  # raw JSON: _preload_content=False
    backoff = Backoff(base=0.5, cap=10.0)
    for attempt in range(1, attempts + 1):
        try:
            response = api.read_namespaced_config_map(
                ref.name,
                ref.namespace,
                _preload_content=False,
                _request_timeout=request_timeout,
            )
            document = json.loads(response.data)
            break
        except Exception as exc:  # noqa: BLE001 - classify() turns every failure into an outcome
            failure = classify(
                exc, verb="get", resource="configmaps", namespace=ref.namespace, name=ref.name
            )
        if failure.not_found:
            log.warning(
                "ConfigMap %s/%s not found; using the default configuration "
                "(all detectors enabled)",
                ref.namespace,
                ref.name,
            )
            return "", "defaults"
        if not failure.temporary or attempt == attempts:
            raise ConfigSourceError(f"cannot read the configuration from {source}: {failure}")
        wait = backoff.delay(failure.retry_after)
        log.warning("reading %s failed (%s); retrying in %.1f s", source, failure, wait)
        sleep(wait)
    data = document.get("data") if isinstance(document, dict) else None
    data = data if isinstance(data, dict) else {}
    if ref.key not in data:
        keys = ", ".join(sorted(map(str, data))) or "none"
        raise ConfigError(
            [Problem("$", f"the ConfigMap has no data key {ref.key!r} (its keys: {keys})")],
            source,
        )
    return str(data[ref.key]), source
