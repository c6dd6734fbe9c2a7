"""A Kubernetes API server emulator with real semantics, for tests and local runs.

It speaks the Kubernetes REST API over HTTP on a loopback port, so code under
test uses the real ``kubernetes`` client against it. See
``docs/testing-with-the-emulator.md``.
"""

from dyntoolset.testing.apiserver.faults import Fault, RequestInfo, RequestRecord
from dyntoolset.testing.apiserver.identity import TokenUser
from dyntoolset.testing.apiserver.resources import RESOURCES, ApiError, ResourceType
from dyntoolset.testing.apiserver.server import AccessDecision, AccessPolicy, ApiServer

__all__ = [
    "RESOURCES",
    "AccessDecision",
    "AccessPolicy",
    "ApiError",
    "ApiServer",
    "Fault",
    "RequestInfo",
    "RequestRecord",
    "ResourceType",
    "TokenUser",
]
