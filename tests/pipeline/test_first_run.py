"""What a newcomer sees first: help with defaults for every argument, a quick demo's report that
says its numbers mean nothing, pseudo-label quality that says why it was not scored."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import c3seg.demo as demo
from c3seg.cli import build_parser
from c3seg.data.types import Sample, SegData
from c3seg.engine.run import Run
from c3seg.evaluation.report import SMOKE_TEST_NOTE, method_row, pseudo_md, write_report
from c3seg.splits import SplitSet


def _parsers(
    p: argparse.ArgumentParser, name: str = "c3seg"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub, q in a.choices.items():
                yield from _parsers(q, f"{name} {sub}")


def test_every_argument_has_help_with_its_default() -> None:
    seen = 0
    for name, p in _parsers(build_parser()):
        text = " ".join(p.format_help().split())
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction) or a.dest in ("help", "version"):
                continue
            seen += 1
            assert a.help, f"{name} {a.option_strings or a.dest} has no help text"
            if a.default is not None and a.default is not False and a.default != []:
                assert f"(default: {a.default})" in text or "default" in a.help, (name, a.dest, text)
    assert seen > 50
    demo_help = " ".join(dict(_parsers(build_parser()))["c3seg demo"].format_help().split())
    assert "(default: runs/demo)" in demo_help and "overrides settings as section.key=value" in demo_help
    predict_help = " ".join(dict(_parsers(build_parser()))["c3seg predict"].format_help().split())
    assert "(default: pnet)" in predict_help and "(default: 8)" in predict_help


def _fake_stages(cfg, run: Run, stages, force=False) -> None:
    classes = ("background", "cat", "dog")
    rows = {"fully-supervised": method_row(np.array([0.9, 0.0, 0.5]), classes, [2])}
    write_report(run, SegData("toy", classes, (), ()), SplitSet("s", ("cat",), ("dog",)), rows)


def test_the_quick_demo_report_says_it_is_a_smoke_test(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "run_stages", _fake_stages)
    report = demo.run_demo(True, [], tmp_path / "quick")
    demo.run_demo(True, [], tmp_path / "quick")  # a rerun adds nothing twice
    md = (tmp_path / "quick" / "report.md").read_text()
    assert md.startswith("# c3seg report") and md.splitlines()[2] == SMOKE_TEST_NOTE
    assert md.count("Smoke test") == 1 and "numbers mean nothing" in md
    rep = json.loads(report.read_text())
    assert rep["smoke_test"] is True and "mean nothing" in rep["smoke_test_note"]
    assert rep["methods"]["fully-supervised"]["iou"]["cat"] == 0.0
    full = demo.run_demo(False, [], tmp_path / "full")
    assert "Smoke test" not in (tmp_path / "full" / "report.md").read_text()
    assert "smoke_test" not in json.loads(full.read_text())


def test_pseudo_labels_of_weak_images_without_masks_say_not_scored(tmp_path: Path) -> None:
    import c3seg.stages.make_labels as ml
    from c3seg.io import write_label_png

    classes = ("background", "cat", "dog")
    weak = [Sample("w", tmp_path / "w.jpg", None, (2,))]  # labels.csv only, no mask
    data = SegData("mine", classes, tuple(weak), ())
    run = Run(tmp_path / "run")
    write_label_png(run.label_path("diffusion", "w"), np.zeros((4, 4), np.uint8))
    q = ml.label_quality(run, data, SplitSet("s", ("cat",), ("dog",)), weak, "diffusion")
    assert q["images"] == 0
    line = ml.quality_line(q)
    assert line.split() == "pseudo labels diffusion not scored: weak images have no masks".split()
    assert "nan" not in line
    assert "| diffusion | not scored: weak images have no masks |" in pseudo_md({"diffusion": q})
    assert "mIoU 40.0" in ml.quality_line(
        {"source": "diffusion", "images": 3, "miou": 40.0, "miou_weak": 30.0}
    )
