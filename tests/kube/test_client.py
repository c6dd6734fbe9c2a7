"""controller_client: the caller's host and credentials, no urllib3 retries, TCP keepalive."""

from __future__ import annotations

import socket

from kubernetes import client

from dyntoolset.kube.client import Timeouts, controller_client
from dyntoolset.testing.apiserver import ApiServer


def test_own_client_keeps_credentials_and_sets_our_policy(apiserver: ApiServer) -> None:
    original = apiserver.configuration(token="s3cret")
    original.retries = None  # urllib3 would retry three times on its own
    with client.ApiClient(original) as given:
        tuned = controller_client(given)
        try:
            conf = tuned.configuration
            assert conf is not original and conf.host == original.host
            assert conf.api_key == original.api_key
            assert conf.retries is False and original.retries is None  # the caller's is untouched
            assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in conf.socket_options
            # It works: the emulator answers through it.
            assert client.VersionApi(tuned).get_code(_request_timeout=Timeouts().call).major
        finally:
            tuned.close()


def test_watch_reads_outlast_the_bookmark_interval() -> None:
    timeouts = Timeouts()
    assert timeouts.watch_read > 60.0  # a real API server bookmarks about once a minute
    assert timeouts.watch == (timeouts.connect, timeouts.watch_read)
