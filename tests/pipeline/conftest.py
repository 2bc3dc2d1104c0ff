"""Every test in this folder runs pipeline stages or whole runs: each is marked `slow`, so
`pytest -m "not slow"` runs only tests/unit."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.slow)
