"""How the runner turns ``api.auth`` into an authenticator, and the loopback rule of ``none``."""

from __future__ import annotations

import attrs
import pytest

from dyntoolset.config import ApiAuth, ApiSettings, load_config_text
from dyntoolset.controller.auth import KubernetesAuth, NoAuth, StaticTokens
from dyntoolset.controller.probes import is_loopback
from dyntoolset.controller.runner import authenticator, check_api_listen
from dyntoolset.errors import ConfigError
from dyntoolset.testing import make_plugin_set


def config_with(auth: ApiAuth):  # type: ignore[no-untyped-def]
    config = load_config_text("", "test.yaml", make_plugin_set())
    return attrs.evolve(config, api=ApiSettings(auth=auth))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"])
def test_none_is_accepted_on_loopback(host: str) -> None:
    assert is_loopback(host)
    check_api_listen(config_with(ApiAuth(mode="none")), (host, 8080))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "controller.example", ""])
def test_none_is_refused_elsewhere_naming_both(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError) as caught:
        check_api_listen(config_with(ApiAuth(mode="none")), (host, 8080))
    (problem,) = caught.value.problems
    assert problem.path == "$.api.auth.mode"
    assert f"not {host}:8080" in problem.message and "--listen" in problem.message


@pytest.mark.parametrize("mode", ["static", "kubernetes"])
def test_authenticated_modes_listen_anywhere(mode: str) -> None:
    check_api_listen(config_with(ApiAuth(mode=mode, token_file="/t")), ("0.0.0.0", 8080))  # type: ignore[arg-type]


def test_each_mode_gets_its_authenticator() -> None:
    reviews = object()
    assert isinstance(authenticator(ApiAuth(mode="none"), reviews), NoAuth)  # type: ignore[arg-type]
    static = authenticator(ApiAuth(mode="static", token_file="/run/tokens"), reviews)  # type: ignore[arg-type]
    assert isinstance(static, StaticTokens) and static.path == "/run/tokens"
    kube = authenticator(ApiAuth(audiences=("dyntoolset",), cache_ttl=0), reviews)  # type: ignore[arg-type]
    assert isinstance(kube, KubernetesAuth)
