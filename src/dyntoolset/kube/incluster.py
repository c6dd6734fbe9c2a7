"""Is this process running in a Kubernetes Pod?"""

from __future__ import annotations

import os

#: Where the kubelet mounts the Pod's service-account token.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def in_cluster() -> bool:
    """True when the API server's address and a service-account token are both present,
    as in every Pod that mounts its service account."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(SERVICE_ACCOUNT_TOKEN)
