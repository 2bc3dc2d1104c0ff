"""Shared fixtures: one quick demo run (every stage, tiny configuration) for the tests that use a
trained run, made once per test session."""

from pathlib import Path

import pytest

from c3seg.cli import main


@pytest.fixture(scope="session", autouse=True)
def _cache_folder(tmp_path_factory):
    """Every test's default cache folder (data.root) is a temporary one, never ~/.cache/c3seg."""
    mp = pytest.MonkeyPatch()
    mp.setenv("C3SEG_CACHE", str(tmp_path_factory.mktemp("c3seg-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """(run folder, the demo's command line) of a finished `c3seg demo --quick`. Tests must not
    change it: they write their own outputs elsewhere."""
    root = tmp_path_factory.mktemp("quick")
    out = root / "run"
    args = ["demo", "--quick", "--out", str(out), f"data.root={root / 'data'}"]
    assert main(args) == 0
    return out, args
