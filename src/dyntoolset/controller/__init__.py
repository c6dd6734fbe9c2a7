"""The live service: reconciler, leader election, configuration reload, HTTP API, runner.

Built on :mod:`dyntoolset.kube` (cluster access) and
:class:`dyntoolset.pipeline.Engine` (one discovery cycle).
"""
