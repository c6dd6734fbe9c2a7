"""TokenReview and SubjectAccessReview: the API server decides who may call our HTTP API.

The API's ``kubernetes`` authentication mode (as kube-rbac-proxy does) asks
the API server two questions per (uncached) request:

1. :meth:`AccessReviews.review_token`: a ``TokenReview``
   (``authentication.k8s.io/v1``) with the configured ``spec.audiences``:
   whose token is this?
2. :meth:`AccessReviews.review_access`: a ``SubjectAccessReview``
   (``authorization.k8s.io/v1``) with that user's name, uid, groups and
   extra, and ``nonResourceAttributes`` ``{path, verb}``: may they?

Both are created as raw JSON with the controller's call timeouts. Any
failure (an error status, a timeout, an unreadable answer) raises
:class:`ReviewUnavailable`: the caller answers 503 and never fails open. A
403 says which RBAC rule the controller's ServiceAccount lacks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from kubernetes import client as k8s

from dyntoolset.errors import DyntoolsetError
from dyntoolset.kube.client import Timeouts, controller_client
from dyntoolset.kube.errors import classify

__all__ = ["AccessDecision", "AccessReviews", "ReviewUnavailable", "ReviewedUser", "TokenReview"]


class ReviewUnavailable(DyntoolsetError):
    """A review could not be made (API error, timeout, unreadable answer): deny with 503."""


@attrs.frozen
class ReviewedUser:
    """Who a TokenReview says a token belongs to."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = attrs.Factory(dict)


@attrs.frozen
class TokenReview:
    """A TokenReview's ``status``: authenticated (with user and audiences) or why not."""

    authenticated: bool
    user: ReviewedUser | None = None
    audiences: tuple[str, ...] = ()
    error: str = ""


@attrs.frozen
class AccessDecision:
    """A SubjectAccessReview's ``status``."""

    allowed: bool
    denied: bool = False
    reason: str = ""


class AccessReviews:
    """Creates TokenReviews and SubjectAccessReviews through its own client (thread-safe)."""

    def __init__(self, api_client: Any, *, timeouts: Timeouts | None = None) -> None:
        self._client = controller_client(api_client)
        self._timeouts = timeouts or Timeouts()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def review_token(self, token: str, audiences: Sequence[str] = ()) -> TokenReview:
        """Ask whose ``token`` this is (with ``spec.audiences`` when given)."""
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        api: Any = k8s.AuthenticationV1Api(self._client)  # raw JSON: _preload_content=False
        status = self._create(api.create_token_review, body, "tokenreviews", "authentication")
        user = status.get("user") or {}
        if not status.get("authenticated") or not isinstance(user, dict):
            return TokenReview(False, error=str(status.get("error") or "token not authenticated"))
        return TokenReview(
            True,
            ReviewedUser(
                username=str(user.get("username") or ""),
                uid=str(user.get("uid") or ""),
                groups=tuple(str(g) for g in user.get("groups") or ()),
                extra={
                    str(k): tuple(str(v) for v in values or ())
                    for k, values in (user.get("extra") or {}).items()
                },
            ),
            audiences=tuple(str(a) for a in status.get("audiences") or ()),
        )

    def review_access(self, user: ReviewedUser, verb: str, path: str) -> AccessDecision:
        """Ask whether ``user`` may ``verb`` the non-resource URL ``path``."""
        spec: dict[str, Any] = {
            "user": user.username,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        api: Any = k8s.AuthorizationV1Api(self._client)
        status = self._create(
            api.create_subject_access_review, body, "subjectaccessreviews", "authorization"
        )
        return AccessDecision(
            allowed=status.get("allowed") is True,
            denied=status.get("denied") is True,
            reason=str(status.get("reason") or status.get("evaluationError") or ""),
        )

    def _create(self, call: Any, body: dict[str, Any], resource: str, group: str) -> Any:
        try:
            response = call(body, _preload_content=False, _request_timeout=self._timeouts.call)
            document = json.loads(response.data)
        except Exception as exc:  # noqa: BLE001 - classify() turns every failure into an outcome
            failure = classify(exc, verb="create", resource=resource, api_group=f"{group}.k8s.io")
            raise ReviewUnavailable(f"{body['kind']} failed: {failure}") from None
        status = document.get("status") if isinstance(document, dict) else None
        if not isinstance(status, dict):
            raise ReviewUnavailable(f"{body['kind']} answer has no status object")
        return status
