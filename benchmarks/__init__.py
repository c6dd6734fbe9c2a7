"""The benchmark suite of issue 15: ``python -m benchmarks.run`` (``nox -s bench``)."""
