"""The built-in detectors: ``prometheus``, ``grafana``, ``jaeger``, ``elasticsearch``, ``custom``.

Each module registers its detector through the ``register_detectors`` hook and
the ``dyntoolset`` entry-point group, exactly as a third-party plugin would.
:mod:`dyntoolset.detectors.mapping` holds the one table that turns a toolset
type into agent toolsets; plugins may reuse it.

What each detector matches, and why, is documented in ``docs/detectors.md``.
"""
