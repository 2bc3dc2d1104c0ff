"""`c3seg bench pipeline` and the stage timings it reads (RUN/timings.json, `c3seg status`)."""

import json
from pathlib import Path

import pytest

from c3seg.bench.pipeline import _at, bench_pipeline, table_md
from c3seg.cli import main
from c3seg.engine.run import Run
from c3seg.pipeline import unit_seconds


def test_every_unit_of_a_run_is_timed_and_status_shows_it(quick_run, capsys):
    out, _ = quick_run
    seconds = unit_seconds(Run(out))
    assert {"train-lnet", "train-cam", "make-labels", "train-seg/lnet", "train-pnet", "evaluate"} <= set(
        seconds
    )
    assert all(s > 0 for s in seconds.values())
    capsys.readouterr()
    main(["status", str(out)])
    status = capsys.readouterr().out
    assert "train-lnet" in status and "took" in status


def test_line_fit_reads_fixed_and_per_image_cost():
    assert _at([(10, 5.0)], 100) == pytest.approx(50.0)  # one size: proportional
    assert _at([(10, 4.0), (10, 6.0)], 100) == pytest.approx(50.0)
    assert _at([(10, 3.0), (20, 5.0)], 100) == pytest.approx(21.0)  # 1 + 0.2 an image
    assert _at([(10, 5.0), (20, 4.0)], 100) == pytest.approx(4.5)  # no negative slope: the mean
    # an epoch's seconds: a falling line at small sizes is noise, read as proportional instead
    assert _at([(10, 5.0), (20, 4.0)], 100, per_image=True) == pytest.approx(30.0)
    assert _at([(10, 3.0), (20, 5.0)], 100, per_image=True) == pytest.approx(21.0)  # a rising line stays


def test_scaled_runs_extrapolate_each_unit(tmp_path):
    result = bench_pipeline(
        "tiny", ["lnet.epochs=1", "pnet.eval_every=1"], tmp_path, [(12, 4), (16, 4)], size=48, epochs=2,
        full_train=1000, full_val=100,
    )  # fmt: skip
    units = {r["unit"]: r for r in result["units"]}
    assert {"train-lnet", "make-labels", "train-seg/fully-supervised", "train-pnet", "evaluate"} <= set(units)
    for r in units.values():  # every unit took time, and takes some at full size
        assert len(r["measured_s"]) == 2 and min(r["measured_s"]) >= 0 and r["full_s"] > 0, r
    # the totals are the sums of the units (rounded to 0.1 s)
    rows = result["units"]
    assert result["full_s"] == pytest.approx(sum(r["full_s"] for r in rows), abs=0.051)
    for i, total in enumerate(result["measured_s"]):
        assert total == pytest.approx(sum(r["measured_s"][i] for r in rows), abs=0.051)
    # 1000 + 100 images against 12-16 + 4: more work, more time
    assert result["full_s"] > max(result["measured_s"]) > 0
    assert "train-seg/lnet" in table_md(result)
    json.dumps(result)
    with pytest.raises(ValueError, match="exists"):
        bench_pipeline("tiny", [], tmp_path, [(12, 4)], size=48, epochs=1)


def test_cli_refuses_unequal_size_lists(tmp_path: Path):
    with pytest.raises(ValueError, match="as many val counts"):
        from argparse import Namespace

        from c3seg.bench.pipeline import bench_pipeline_command

        bench_pipeline_command(Namespace(train="10,20", val="5", config="tiny", overrides=[], out=tmp_path))
