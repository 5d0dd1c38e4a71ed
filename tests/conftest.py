"""Root pytest configuration: shared fixture plugins for every test package."""

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.sandbox"]
