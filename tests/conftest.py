pytest_plugins = ["dyntoolset.testing.pytest_plugin"]
