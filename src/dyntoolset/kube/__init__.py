"""Everything that talks to the Kubernetes API: the only package that imports ``kubernetes``.

Errors become outcomes at this boundary (temporary, with a delay; or
permanent, with the reason and the RBAC rule to add), so the controller
above it never handles client exceptions. Modules:

* :mod:`~dyntoolset.kube.errors` -- :class:`~dyntoolset.kube.errors.ApiFailure`
  (errors as outcomes) and :class:`~dyntoolset.kube.errors.Backoff`, the one
  retry policy;
* :mod:`~dyntoolset.kube.client` -- each component's own ``ApiClient``
  (no urllib3 retries, TCP keepalive) and the call timeouts;
* :mod:`~dyntoolset.kube.watch` -- the list-then-watch loop;
* :mod:`~dyntoolset.kube.services` -- the watched Service cache;
* :mod:`~dyntoolset.kube.configmaps` -- reading, writing and watching the
  output ConfigMap;
* :mod:`~dyntoolset.kube.incluster` -- whether this process runs in a Pod;
* :mod:`~dyntoolset.kube.proxy` -- health checks through the API server's
  service proxy, and :func:`~dyntoolset.kube.proxy.health_transport`, which
  turns ``health_checks.mode`` into the checker's transport;
* :mod:`~dyntoolset.kube.config_source` -- the configuration read from a
  ConfigMap (``--config-configmap``);
* :mod:`~dyntoolset.kube.lease` -- leader election on a Lease
  (:class:`~dyntoolset.kube.lease.LeaderElector`).
"""
