"""The built-in renderers: ``holmesgpt`` (``custom_toolset.yaml``) and ``kubernaut`` (``toolset.json``).

Each module registers its renderer through the ``register_renderers`` hook,
named by an entry point in pyproject.toml exactly as a third-party plugin
would be. The formats are described in docs/output-formats.md.
"""
