"""The resource types the emulator serves, and the ``Status`` error they answer with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class ResourceType:
    """One API resource: where it lives (group/version), its kind and its plural."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    short_names: tuple[str, ...] = ()
    #: discovery categories: ``all`` makes ``kubectl get all`` include the resource
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        """The lower-case kind, as discovery reports it."""
        return self.kind.lower()

    @property
    def stored(self) -> bool:
        """False for the review resources, which are answered, never stored."""
        return "get" in self.verbs


_REVIEW_VERBS = ("create",)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Service", "services", True, short_names=("svc",), categories=("all",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, short_names=("cm",)),
    ResourceType("", "v1", "Namespace", "namespaces", False, short_names=("ns",)),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
    ResourceType(
        "authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, _REVIEW_VERBS
    ),
    ResourceType(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        False,
        _REVIEW_VERBS,
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        False,
        _REVIEW_VERBS,
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        _REVIEW_VERBS,
    ),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}


def find_resource(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource served at ``/apis/{group}/{version}/{plural}`` (group '' is core)."""
    return _BY_PATH.get((group, version, plural))


def resolve(name: str) -> ResourceType:
    """A resource from its plural, singular, kind or short name, any case.

    Raises:
        KeyError: no such resource is served.
    """
    wanted = name.lower()
    for res in RESOURCES:
        if wanted in (res.plural, res.singular, res.kind.lower(), *res.short_names):
            return res
    raise KeyError(f"the emulator does not serve a resource called {name!r}")


def resource_for_object(obj: Mapping[str, Any]) -> ResourceType:
    """The resource an object belongs to, from its ``apiVersion`` and ``kind``.

    Raises:
        KeyError: the object's kind is not served.
    """
    api_version = str(obj.get("apiVersion") or "")
    kind = str(obj.get("kind") or "")
    for res in RESOURCES:
        if res.kind == kind and res.api_version == api_version:
            return res
    raise KeyError(f"the emulator does not serve {api_version or '?'} {kind or '?'}")


class ApiError(Exception):
    """An API error, rendered to the client as a ``Status`` object with its HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def status(self) -> dict[str, Any]:
        """The ``Status`` body, shaped as the real API server shapes it."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]  # StatusReasonUnknown is "" and omitted, as upstream
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(res: ResourceType, name: str) -> ApiError:
    """404 NotFound for one object."""
    group = f".{res.group}" if res.group else ""
    return ApiError(
        404,
        "NotFound",
        f'{res.plural}{group} "{name}" not found',
        {"name": name, "group": res.group, "kind": res.plural}
        if res.group
        else {"name": name, "kind": res.plural},
    )


def already_exists(res: ResourceType, name: str) -> ApiError:
    """409 AlreadyExists for a create of a name that is taken."""
    group = f".{res.group}" if res.group else ""
    details: dict[str, Any] = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return ApiError(409, "AlreadyExists", f'{res.plural}{group} "{name}" already exists', details)


def conflict(res: ResourceType, name: str) -> ApiError:
    """409 Conflict for a write with a stale ``resourceVersion``."""
    group = f".{res.group}" if res.group else ""
    details: dict[str, Any] = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {res.plural}{group} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details,
    )


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def invalid(res: ResourceType, name: str, field: str, message: str) -> ApiError:
    """422 Invalid, with one cause naming the field."""
    return ApiError(
        422,
        "Invalid",
        f'{res.kind} "{name}" is invalid: {field}: {message}',
        {
            "name": name,
            "kind": res.kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
        },
    )


def gone(message: str) -> ApiError:
    """410 Expired (a continue token or resourceVersion older than the retained history)."""
    return ApiError(410, "Expired", message)
