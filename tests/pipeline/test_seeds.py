"""The multi-seed headline: --seeds parsing, summarize on hand-made reports, and the demo loop."""

from __future__ import annotations

import json
import statistics

import pytest

import c3seg.demo as demo
from c3seg.cli import build_parser, main
from c3seg.headline import parse_seeds, summarize, summary_md
from c3seg.io import write_json


def report(miou: float, weak: float | None, epoch: int | None = 1) -> dict:
    row = {
        "miou": miou,
        "miou_strong": 70.0,
        "miou_weak": weak,
        "percent_of_fully_supervised": round(miou / 0.8, 1),
        "percent_of_fully_supervised_weak": None if weak is None else round(weak / 0.6, 1),
        "iou": {},
    }
    return {
        "dataset": "benchmark",
        "split": "bench-half",
        "methods": {
            "lnet": row,
            "pnet": {
                **row,
                "miou_weak": None if weak is None else weak + 2,
                "selected_epoch": epoch,
                "selection_score": 50.0,
            },
            "cam-threshold": {**row, "miou_weak": 5.0},
        },
        "pseudo_labels": {"diffusion": {"miou": miou - 10, "miou_weak": weak}},
    }


def test_parse_seeds_count_and_list() -> None:
    assert parse_seeds("3") == [1, 2, 3]  # a count never includes the development seed 0
    assert parse_seeds("1,2,3") == [1, 2, 3]
    assert parse_seeds("0,4") == [0, 4]
    assert parse_seeds("5,") == [5]
    for bad in ("0", "", "a", "1,1", "-1,2"):
        with pytest.raises(ValueError):
            parse_seeds(bad)
    assert build_parser().parse_args(["demo", "--seeds", "2"]).seeds == [1, 2]
    assert build_parser().parse_args(["demo"]).seeds is None


def test_summarize_means_spread_and_development_seed() -> None:
    s = summarize({2: report(50.0, 30.0, epoch=0), 1: report(40.0, 20.0), 3: report(60.0, None)})
    assert s["seeds"] == [1, 2, 3] and s["development_seeds"] == []
    lnet = s["methods"]["lnet"]
    assert lnet["miou"] == {"mean": 50.0, "min": 40.0, "max": 60.0, "std": 10.0, "n": 3}
    assert lnet["miou_weak"] == {
        "mean": 25.0,
        "min": 20.0,
        "max": 30.0,
        "std": round(statistics.stdev([20, 30]), 2),
        "n": 2,
    }
    assert lnet["percent_of_fully_supervised"]["mean"] == 62.5
    assert lnet["percent_of_fully_supervised_weak"]["n"] == 2
    assert s["methods"]["pnet"]["selected_epoch"] == {"1": 1, "2": 0, "3": 1}
    assert s["pseudo_labels"]["diffusion"]["miou"]["mean"] == 40.0
    md = summary_md(s)
    assert "| lnet | 50.0 ± 10.0 (40.0–60.0) |" in md and "weak % of full" in md
    assert "seed 2: 0" in md and "development seed" not in md
    gain = s["differences"]["pnet - lnet"]
    assert gain["per_seed"] == {"1": 2.0, "2": 2.0} and gain["mean"] == 2.0 and gain["n"] == 2
    margin = s["differences"]["lnet - cam-threshold"]["per_seed"]
    assert margin == {"1": 15.0, "2": 25.0}  # seed 3 has no weak mIoU: left out, not zero
    assert "| pnet - lnet | 2.0 ± 0.0 (2.0–2.0) | 1: +2.0, 2: +2.0 |" in md

    s = summarize({0: report(50.0, 30.0), 1: report(40.0, 20.0, epoch=None)})
    assert s["development_seeds"] == [0] and s["methods"]["lnet"]["miou"]["std"] == round(
        statistics.stdev([50, 40]), 2
    )
    md = summary_md(s)
    assert "0 (development seed)" in md and "seed 1: ?" in md
    one = summarize({4: report(45.0, 25.0)})["methods"]["lnet"]["miou"]
    assert one == {"mean": 45.0, "min": 45.0, "max": 45.0, "std": None, "n": 1}


def test_demo_seeds_runs_each_seed_once_and_summarizes(tmp_path, monkeypatch) -> None:
    calls = []

    def fake_run(quick, overrides, out, force=False, config=None):
        calls.append((quick, list(overrides), out.name))
        k = int(out.name.split("-")[1])
        return write_json(out / "report.json", report(40.0 + k, 20.0 + k))

    monkeypatch.setattr(demo, "run_demo", fake_run)
    write_json(tmp_path / "h" / "seed-2" / "report.json", report(42.0, 22.0))  # done before: not rerun
    assert main(["demo", "--quick", "--seeds", "1,2,3", "--out", str(tmp_path / "h"), "seg.epochs=2"]) == 0
    assert calls == [
        (True, ["seg.epochs=2", "data.bench_seed=1", "seed=1"], "seed-1"),
        (True, ["seg.epochs=2", "data.bench_seed=3", "seed=3"], "seed-3"),
    ]
    summary = json.loads((tmp_path / "h" / "summary.json").read_text())
    assert summary["seeds"] == [1, 2, 3] and summary["methods"]["lnet"]["miou"]["mean"] == 42.0
    assert (tmp_path / "h" / "summary.md").read_text().startswith("# c3seg headline over 3 seeds")
    assert main(["demo", "--seeds", "2", "--out", str(tmp_path / "h"), "seed=5"]) == 2  # clashes with --seeds
