"""RBAC-like rules that decide the emulator's access reviews (``ApiServer.allow`` / ``deny``).

A rule names a subject (a user, a group, or anyone), verbs, and either
non-resource URLs (``/api/v1/statistics``; a trailing ``*`` matches a
prefix, as RBAC's ``nonResourceURLs``) or a resource (with its API group and
an optional namespace). A review's ``spec`` matches a rule when its subject
and its ``resourceAttributes`` or ``nonResourceAttributes`` do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["AccessRule"]


def _matches(pattern: str, value: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


@attrs.frozen
class AccessRule:
    """One rule; ``None`` subject fields match anyone, ``"*"`` any verb or resource."""

    verbs: tuple[str, ...]
    user: str | None = None
    group: str | None = None
    #: Non-resource URL patterns (RBAC ``nonResourceURLs``).
    paths: tuple[str, ...] = ()
    #: Resource (plural), its API group (``""`` core) and namespace (``None``: any).
    resource: str | None = None
    api_group: str = ""
    namespace: str | None = None

    def matches(self, spec: Mapping[str, Any]) -> bool:
        """Whether this rule covers the review ``spec`` (as sent, or with the requester filled in)."""
        if self.user is not None and spec.get("user") != self.user:
            return False
        if self.group is not None and self.group not in (spec.get("groups") or ()):
            return False
        non_resource = spec.get("nonResourceAttributes")
        if isinstance(non_resource, Mapping):
            return (
                bool(self.paths)
                and self._verb(non_resource.get("verb"))
                and any(_matches(p, str(non_resource.get("path") or "")) for p in self.paths)
            )
        attributes = spec.get("resourceAttributes")
        if isinstance(attributes, Mapping) and self.resource is not None:
            resource = str(attributes.get("resource") or "")
            if attributes.get("subresource"):
                resource += f"/{attributes['subresource']}"
            return (
                self._verb(attributes.get("verb"))
                and _matches(self.resource, resource)
                and (self.api_group == "*" or self.api_group == (attributes.get("group") or ""))
                and (self.namespace is None or self.namespace == attributes.get("namespace"))
            )
        return False

    def _verb(self, verb: Any) -> bool:
        return "*" in self.verbs or verb in self.verbs

    def __str__(self) -> str:
        who = (
            f"user {self.user}" if self.user else f"group {self.group}" if self.group else "anyone"
        )
        what = ", ".join(self.paths) if self.paths else f"{self.resource}"
        return f"{who} may {'/'.join(self.verbs)} {what}"
