"""Authentication of /api/v1 through real HTTP: static tokens, and TokenReview +
SubjectAccessReview against the emulator through the real client."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dyntoolset.controller.auth import Action, AuthFailure, KubernetesAuth, StaticTokens
from dyntoolset.kube.reviews import AccessReviews
from dyntoolset.metrics import Metrics
from dyntoolset.testing.apiserver import ApiServer
from tests.controller._api import RecordingReloader, bearer, call, serving

STATS = "/api/v1/statistics"
RELOAD = "/api/v1/config/reload"
CHALLENGE = 'Bearer realm="dyntoolset"'
INVALID = 'Bearer realm="dyntoolset", error="invalid_token"'


def failures(metrics: Metrics, reason: str) -> float:
    return metrics.value("dynamic_toolset_api_auth_failures_total", {"reason": reason})


# -- static tokens ---------------------------------------------------------------------


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text("# readers and reloaders\nalpha-token\n\n  beta-token  \n")
    return path


@pytest.fixture
def static(token_file: Path) -> Iterator[tuple[tuple[str, int], Metrics]]:
    with serving(StaticTokens(str(token_file)), reloader=RecordingReloader()) as served:
        yield served


def test_static_tokens_in_the_file_are_accepted(static) -> None:
    address, _ = static
    for token in ("alpha-token", "beta-token"):
        assert call(address, "GET", STATS, headers=bearer(token)).status == 200
        assert call(address, "POST", RELOAD, headers=bearer(token)).status == 200
    lower = {"Authorization": "bearer alpha-token"}  # the scheme is case-insensitive
    assert call(address, "GET", STATS, headers=lower).status == 200


@pytest.mark.parametrize(
    ("headers", "reason", "challenge"),
    [
        ({}, "missing", CHALLENGE),
        ({"Authorization": ""}, "missing", CHALLENGE),
        ({"Authorization": "Basic YWxwaGE6dG9rZW4="}, "malformed", CHALLENGE),
        ({"Authorization": "Bearer"}, "malformed", CHALLENGE),
        ({"Authorization": "Bearer "}, "malformed", CHALLENGE),
        ({"Authorization": "Bearer alpha-token extra"}, "malformed", CHALLENGE),
        ({"Authorization": "Bearer wrong"}, "invalid", INVALID),
        ({"Authorization": "Bearer alpha-tokenX"}, "invalid", INVALID),
        ({"Authorization": "Bearer alpha"}, "invalid", INVALID),
        ({"Authorization": "Bearer #"}, "invalid", INVALID),
        ({"Authorization": "Bearer ∂élta".encode()}, "invalid", INVALID),
        ({"Authorization": b"Bearer \xff\xfe"}, "invalid", INVALID),
    ],
)
def test_refused_tokens_are_401_with_a_challenge(
    static, headers: dict[str, Any], reason: str, challenge: str
) -> None:
    address, metrics = static
    for method, path in (("GET", STATS), ("POST", RELOAD), ("GET", "/api/v1/unknown")):
        answer = call(address, method, path, headers=headers)
        assert answer.status == 401, (method, path)
        assert answer.headers["WWW-Authenticate"] == challenge
        assert answer.json()["title"] == "Unauthorized"
    assert failures(metrics, reason) == 3


def test_non_ascii_tokens_are_compared_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_bytes("jéton-ünïcode\n".encode())
    with serving(StaticTokens(str(path))) as (address, _):
        assert call(address, "GET", STATS, headers=bearer("jéton-ünïcode".encode())).status == 200
        latin1 = bearer("jéton-ünïcode".encode("latin-1"))
        assert call(address, "GET", STATS, headers=latin1).status == 401


def test_every_token_is_compared(token_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: a match on the first token still compares against the rest."""
    import dyntoolset.controller.auth as auth

    compared: list[bytes] = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    tokens = StaticTokens(str(token_file))
    assert tokens.authenticate("Bearer alpha-token", Action("get", STATS)) == "static"
    assert compared == [b"alpha-token", b"beta-token"]


def test_a_rewritten_token_file_is_in_force_for_the_next_request(static, token_file) -> None:
    address, _ = static
    assert call(address, "GET", STATS, headers=bearer("alpha-token")).status == 200
    token_file.write_text("gamma-token\n")
    assert call(address, "GET", STATS, headers=bearer("alpha-token")).status == 401
    assert call(address, "GET", STATS, headers=bearer("gamma-token")).status == 200


def kubelet_mount(directory: Path, version: str, tokens: str) -> None:
    """Write a Secret's data as the kubelet does: a new ``..<version>`` dir, then swap ``..data``."""
    target = directory / f"..{version}"
    target.mkdir()
    (target / "tokens").write_text(tokens)
    staging = directory / "..data_tmp"
    staging.symlink_to(target.name)
    os.replace(staging, directory / "..data")  # atomic rename over the old link
    link = directory / "tokens"
    if not link.is_symlink():
        link.symlink_to("..data/tokens")


def test_a_kubelet_symlink_swap_rotates_the_tokens(tmp_path: Path) -> None:
    mount = tmp_path / "secret"
    mount.mkdir()
    kubelet_mount(mount, "2026_12_01_1", "old-token\n")
    with serving(StaticTokens(str(mount / "tokens"))) as (address, _):
        assert call(address, "GET", STATS, headers=bearer("old-token")).status == 200
        # Same size, same second: only the inode tells the files apart.
        kubelet_mount(mount, "2026_12_01_2", "new-token\n")
        assert call(address, "GET", STATS, headers=bearer("old-token")).status == 401
        assert call(address, "GET", STATS, headers=bearer("new-token")).status == 200


@pytest.mark.parametrize("broken", ["missing", "empty", "comments only", "a directory"])
def test_an_unusable_token_file_refuses_everything_with_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    path = tmp_path / "tokens"
    if broken == "empty":
        path.write_text("")
    elif broken == "comments only":
        path.write_text("# nothing yet\n\n")
    elif broken == "a directory":
        path.mkdir()
    with (
        caplog.at_level(logging.ERROR, logger="dyntoolset.api"),
        serving(StaticTokens(str(path))) as (address, metrics),
    ):
        for _ in range(2):
            answer = call(address, "GET", STATS, headers=bearer("any"))
            assert answer.status == 503
            assert str(path) in answer.json()["detail"]
            assert "no request is accepted" in answer.json()["detail"]
        assert failures(metrics, "unavailable") == 2
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and str(path) in errors[0].getMessage()  # once, not per request
        if broken == "a directory":
            path.rmdir()
        path.write_text("fixed-token\n")
        assert call(address, "GET", STATS, headers=bearer("fixed-token")).status == 200
        assert call(address, "GET", STATS, headers=bearer("any")).status == 401


# -- kubernetes: TokenReview and SubjectAccessReview -------------------------------------


@pytest.fixture
def reviews(apiserver: ApiServer) -> Iterator[AccessReviews]:
    reviews = AccessReviews(apiserver.api_client)
    yield reviews
    reviews.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kube(
    apiserver: ApiServer, reviews: AccessReviews, clock: Clock
) -> Iterator[tuple[tuple[str, int], Metrics]]:
    apiserver.add_token("reader-token", "reader", groups=["readers"], uid="u-1")
    apiserver.add_token("reloader-token", "reloader")
    apiserver.allow(None, "get", path=["/api/v1/statistics", "/api/v1/services"], group="readers")
    apiserver.allow("reloader", "create", path=RELOAD)
    auth = KubernetesAuth(reviews, audiences=(), cache_ttl=10, clock=clock)
    with serving(auth, reloader=RecordingReloader()) as served:
        yield served


def test_reads_and_the_reload_are_separate_actions(kube, apiserver: ApiServer) -> None:
    address, metrics = kube
    assert call(address, "GET", STATS, headers=bearer("reader-token")).status == 200
    refused = call(address, "POST", RELOAD, headers=bearer("reader-token"))
    assert refused.status == 403 and "WWW-Authenticate" not in refused.headers
    assert refused.json()["detail"].startswith("reader may not create /api/v1/config/reload")
    assert call(address, "POST", RELOAD, headers=bearer("reloader-token")).status == 200
    assert call(address, "GET", STATS, headers=bearer("reloader-token")).status == 403
    assert failures(metrics, "forbidden") == 2


def test_the_access_review_carries_the_reviewed_user(kube, apiserver: ApiServer) -> None:
    address, _ = kube
    seen: list[dict[str, Any]] = []
    apiserver.access_policy = lambda spec: seen.append(spec) or True
    assert (
        call(address, "GET", "/api/v1/services?namespace=x", headers=bearer("reader-token")).status
        == 404
    )
    assert seen == [
        {
            "user": "reader",
            "groups": ["readers"],
            "uid": "u-1",
            "nonResourceAttributes": {"path": "/api/v1/services", "verb": "get"},
        }
    ]


def test_an_unknown_token_is_401_invalid(kube, apiserver: ApiServer) -> None:
    address, metrics = kube
    answer = call(address, "GET", STATS, headers=bearer("nobody"))
    assert answer.status == 401 and answer.headers["WWW-Authenticate"] == INVALID
    assert call(address, "GET", STATS, headers=bearer("nobody")).status == 401
    assert apiserver.count(resource="tokenreviews") == 1  # a denial is cached too
    assert call(address, "GET", STATS, headers=bearer("∂".encode())).status == 401
    assert call(address, "GET", STATS).status == 401
    assert apiserver.count(resource="subjectaccessreviews") == 0
    assert failures(metrics, "invalid") == 3 and failures(metrics, "missing") == 1


def test_decisions_are_cached_until_they_expire(kube, apiserver: ApiServer, clock: Clock) -> None:
    address, _ = kube
    for _ in range(3):
        assert call(address, "GET", STATS, headers=bearer("reader-token")).status == 200
        assert call(address, "POST", RELOAD, headers=bearer("reader-token")).status == 403
    assert apiserver.count(resource="tokenreviews") == 2  # one per (token, action)
    assert apiserver.count(resource="subjectaccessreviews") == 2
    clock.now += 9.9
    assert call(address, "GET", STATS, headers=bearer("reader-token")).status == 200
    assert apiserver.count(resource="tokenreviews") == 2
    clock.now += 0.2
    assert call(address, "GET", STATS, headers=bearer("reader-token")).status == 200
    assert apiserver.count(resource="tokenreviews") == 3


def test_no_cache_with_ttl_zero(apiserver: ApiServer, reviews: AccessReviews) -> None:
    apiserver.add_token("t", "alice")
    apiserver.allow("alice", "get", path=STATS)
    with serving(KubernetesAuth(reviews, cache_ttl=0)) as (address, _):
        for _ in range(3):
            assert call(address, "GET", STATS, headers=bearer("t")).status == 200
    assert apiserver.count(resource="tokenreviews") == 3


def test_the_cache_is_bounded(apiserver: ApiServer, reviews: AccessReviews) -> None:
    apiserver.add_token("t", "alice")
    apiserver.allow("alice", "get", path="/api/v1/*")
    auth = KubernetesAuth(reviews, cache_ttl=60, max_entries=2)
    for path in ("/api/v1/a", "/api/v1/b", "/api/v1/c", "/api/v1/a"):
        assert auth.authenticate("Bearer t", Action("get", path)) == "alice"
    assert apiserver.count(resource="tokenreviews") == 4  # /a was evicted by /c


@pytest.mark.parametrize("failing", ["tokenreviews", "subjectaccessreviews"])
@pytest.mark.parametrize("status", [500, 403])
def test_a_failing_review_is_503_and_not_cached(
    kube, apiserver: ApiServer, caplog: pytest.LogCaptureFixture, failing: str, status: int
) -> None:
    address, metrics = kube
    apiserver.fail(status, verb="create", resource=failing, times=1)
    with caplog.at_level(logging.ERROR, logger="dyntoolset.api"):
        answer = call(address, "GET", STATS, headers=bearer("reader-token"))
    assert answer.status == 503 and "reader-token" not in answer.body.decode()
    assert failures(metrics, "unavailable") == 1
    logged = " ".join(r.getMessage() for r in caplog.records)
    if status == 403:  # the controller lacks RBAC: the log says what to grant
        assert f"resources: [{failing}], verbs: [create]" in logged
    assert call(address, "GET", STATS, headers=bearer("reader-token")).status == 200


def test_a_silent_auth_api_is_503(apiserver: ApiServer) -> None:
    from dyntoolset.kube.client import Timeouts

    apiserver.add_token("t", "alice")
    apiserver.stall(5, verb="create", resource="tokenreviews")
    reviews = AccessReviews(apiserver.api_client, timeouts=Timeouts(connect=1, read=0.5))
    try:
        with pytest.raises(AuthFailure) as caught:
            KubernetesAuth(reviews).authenticate("Bearer t", Action("get", STATS))
    finally:
        reviews.close()
    assert caught.value.status == 503 and caught.value.reason == "unavailable"


def test_audiences_are_asked_for_and_checked(apiserver: ApiServer, reviews: AccessReviews) -> None:
    apiserver.add_token("mine", "alice", audiences=["dyntoolset"])
    apiserver.add_token("theirs", "bob", audiences=["vault"])
    apiserver.allow(None, "get", path=STATS)
    with serving(KubernetesAuth(reviews, audiences=["dyntoolset"])) as (address, _):
        assert call(address, "GET", STATS, headers=bearer("mine")).status == 200
        assert call(address, "GET", STATS, headers=bearer("theirs")).status == 401
    asked = apiserver.find_requests(resource="tokenreviews")
    assert [r.body["spec"]["audiences"] for r in asked] == [["dyntoolset"], ["dyntoolset"]]


def test_no_token_in_the_logs_of_the_kubernetes_mode(
    apiserver: ApiServer, reviews: AccessReviews
) -> None:
    import io

    from dyntoolset.controller.logs import configure_logging

    token = "k8s-Secret-Token-987"
    apiserver.add_token(token, "alice")
    apiserver.allow("alice", "get", path=STATS)
    stream = io.StringIO()
    restore = configure_logging("json", logging.DEBUG, stream=stream)
    try:
        with serving(KubernetesAuth(reviews, cache_ttl=0)) as (address, _):
            assert call(address, "GET", STATS, headers=bearer(token)).status == 200
            assert call(address, "POST", RELOAD, headers=bearer(token)).status == 403
            apiserver.fail(500, verb="create", resource="tokenreviews", times=1)
            assert call(address, "GET", STATS, headers=bearer(token)).status == 503
    finally:
        restore()
    text = stream.getvalue()
    assert '"event": "api_request"' in text and '"event": "auth_unavailable"' in text
    assert token not in text
