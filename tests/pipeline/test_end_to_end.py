"""Every stage of the paper on the tiny configuration, then a second run that skips them all."""

import json

from c3seg.cli import main


def test_demo_quick_runs_every_stage_and_resumes(quick_run):
    out, args = quick_run
    report = json.loads((out / "report.json").read_text())
    assert set(report["methods"]) == {"fully-supervised", "strong-only", "cam-threshold", "lnet", "pnet"}
    for row in report["methods"].values():
        assert 0 <= row["miou"] <= 100
        assert row["percent_of_fully_supervised"] is not None
        assert set(row["iou"]) == set(report["classes"])
    assert {"diffusion", "cam-threshold"} <= set(report["pseudo_labels"])
    assert report["strong"] and report["weak"] and not set(report["strong"]) & set(report["weak"])
    assert (out / "report.md").read_text().startswith("# c3seg report")
    md = (out / "report.md").read_text()
    for fig in ("fig3.png", "fig6.png", "iou.png", "curves.png"):
        assert (out / "figures" / fig).stat().st_size > 1000
        assert f"(figures/{fig})" in md
    assert (out / "config.yaml").exists()
    assert "== train-seg ==" in (out / "run.log").read_text()  # every run logs into its folder

    outputs = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".pt", ".png"))
    mtimes = {p: p.stat().st_mtime_ns for p in outputs}
    assert main(args) == 0  # everything is complete: every stage skips
    assert {p: p.stat().st_mtime_ns for p in outputs} == mtimes
