"""Connecting to the API server: in-cluster credentials or a kubeconfig.

:func:`connect` picks the in-cluster service account when the process runs
in a Pod and no kubeconfig or context was asked for, and the kubeconfig
(``--kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``) otherwise.
The client's own urllib3 retries are switched off here, explicitly: the
controller's :class:`~dyntoolset.kube.errors.Backoff` is the one retry policy.
"""

from __future__ import annotations

from typing import Any

import attrs

from dyntoolset.errors import DyntoolsetError
from dyntoolset.kube.client import controller_configuration
from dyntoolset.kube.incluster import in_cluster

__all__ = ["Connection", "CredentialsError", "connect"]


class CredentialsError(DyntoolsetError):
    """No usable credentials: a missing or broken kubeconfig, an unknown context."""


@attrs.frozen
class Connection:
    """An ``ApiClient`` and where it points."""

    api_client: Any
    #: True when the in-cluster service account is used.
    in_cluster: bool
    host: str


def connect(
    kubeconfig: str | None = None, context: str | None = None, *, inside: bool | None = None
) -> Connection:
    """An ``ApiClient`` for the cluster; see the module docstring.

    ``inside`` overrides the detection of a Pod (tests). Raises
    :class:`CredentialsError` with what to fix when no credentials load.
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    inside = in_cluster() if inside is None else inside
    use_cluster = inside and kubeconfig is None and context is None
    configuration = client.Configuration()
    try:
        if use_cluster:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        where = "the in-cluster service account" if use_cluster else _kubeconfig_name(kubeconfig)
        raise CredentialsError(
            f"cannot load Kubernetes credentials from {where}: {exc}"
            + ("" if use_cluster else " (pass --kubeconfig FILE, or set KUBECONFIG)")
        ) from None
    tuned = controller_configuration(configuration)
    return Connection(client.ApiClient(tuned), use_cluster, str(tuned.host))


def _kubeconfig_name(path: str | None) -> str:
    if path:
        return path
    import os

    return os.environ.get("KUBECONFIG") or "~/.kube/config"
