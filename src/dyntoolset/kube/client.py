"""The client settings every controller call shares: timeouts, keepalive, no hidden retries.

The ``kubernetes`` client has no timeout by default (a half-open connection
hangs forever) and lets urllib3 retry on its own. :func:`controller_client`
builds an ``ApiClient`` from a copy of the caller's configuration with
urllib3's retries off (:class:`~dyntoolset.kube.errors.Backoff` is the one
retry policy) and TCP keepalive on (client-go's probe timings), and
:class:`Timeouts` carries the ``(connect, read)`` pair every call passes as
``_request_timeout``.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs

__all__ = ["Timeouts", "controller_client", "controller_configuration"]


@attrs.frozen
class Timeouts:
    """``(connect, read)`` seconds for ordinary calls and for watches.

    A watch is silent between events, so its read timeout must exceed the
    server's bookmark interval (about a minute on a real API server): a
    watch that stays silent longer than ``watch_read`` is a dead connection
    and is reconnected. ``watch_seconds`` is the server-side
    ``timeoutSeconds`` asked for each watch (the server ends it cleanly).
    """

    connect: float = 5.0
    read: float = 30.0
    watch_read: float = 90.0
    watch_seconds: int = 300

    @property
    def call(self) -> tuple[float, float]:
        """``_request_timeout`` of a list, get or write."""
        return (self.connect, self.read)

    @property
    def watch(self) -> tuple[float, float]:
        """``_request_timeout`` of a watch."""
        return (self.connect, self.watch_read)


def controller_configuration(configuration: Any) -> Any:
    """A copy of ``configuration`` with urllib3 retries off and TCP keepalive on."""
    from kubernetes.utils.keepalive import tcp_keepalive_socket_options

    tuned = copy.copy(configuration)
    tuned.retries = False
    tuned.client_go_retries = False
    tuned.socket_options = tcp_keepalive_socket_options()
    return tuned


def controller_client(api_client: Any) -> Any:
    """A new ``ApiClient`` like ``api_client`` (same host and credentials), tuned as above.

    Each component owns its client (and connection pool) so a watch holding
    a connection never starves the writes; close it with ``.close()``.
    """
    from kubernetes import client

    return client.ApiClient(controller_configuration(api_client.configuration))
