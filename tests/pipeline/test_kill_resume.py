"""SIGKILL `c3seg run` at random moments in every stage, resume, and lose nothing (tools/kill_resume.py)."""

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "kill_resume.py"


def load_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("kill_resume", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_kills_over_every_stage_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    tool = load_tool()
    args = ["--config", "tiny", f"data.root={tmp_path / 'data'}", "methods=fully-supervised,lnet,pnet"]
    result = tool.kill_and_resume(tmp_path / "kr", args, kills=12, seed=0, max_delay=1.5)
    log = (tmp_path / "kr" / "log.txt").read_text(errors="replace")
    assert sum(e.startswith("killed") for e in result["kills"]) >= 10, result["kills"]
    killed_in = {e.split()[2] for e in result["kills"] if e.startswith("killed")}
    assert set(tool.STAGE_LINES) <= killed_in, result["kills"]
    assert result["problems"] == [], (result["problems"], log[-3000:])
    assert result["report_diffs"] == [], result["report_diffs"]
