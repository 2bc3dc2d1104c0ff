import json

import numpy as np

from c3seg.data.types import SegData
from c3seg.engine.run import Run
from c3seg.evaluation.report import method_row, write_report
from c3seg.splits import SplitSet


def test_report_json_and_markdown(tmp_path):
    classes = ("background", "cat", "dog", "car")
    data = SegData("toy", classes, (), ())
    split = SplitSet("toy-split", ("cat", "car"), ("dog",))
    full = method_row(np.array([0.9, 0.8, 0.6, 0.7]), classes, [2])
    ours = method_row(np.array([0.85, 0.8, 0.3, np.nan]), classes, [2])
    run = Run(tmp_path)
    write_report(
        run,
        data,
        split,
        {"fully-supervised": full, "lnet": ours},
        {"diffusion": {"miou": 55.0, "miou_weak": 40.0}},
    )
    rep = json.loads(run.report_json.read_text())
    assert rep["strong"] == ["cat", "car"] and rep["weak"] == ["dog"]
    m = rep["methods"]["lnet"]
    assert m["iou"]["dog"] == 30.0 and m["iou"]["car"] is None
    assert m["miou_weak"] == 30.0 and m["miou_strong"] == 80.0
    assert m["miou"] == round(100 * (0.85 + 0.8 + 0.3) / 3, 2)
    assert rep["methods"]["fully-supervised"]["percent_of_fully_supervised"] == 100.0
    assert m["percent_of_fully_supervised"] == round(
        100 * m["miou"] / rep["methods"]["fully-supervised"]["miou"], 1
    )
    assert rep["pseudo_labels"]["diffusion"]["miou"] == 55.0
    md = run.report_md.read_text()
    assert (
        "| method | background | cat* | dog | car* | mIoU | strong | weak | % of full | weak % of full |"
        in md
    )
    assert m["percent_of_fully_supervised_weak"] == round(100 * 30.0 / 60.0, 1)
    assert f"| {m['percent_of_fully_supervised']:.1f} | 50.0 |" in md  # lnet: overall, then weak ratio
    assert "weak % of full: weak mIoU over the fully-supervised weak mIoU" in md
    assert md.count("\n| ") >= 3


def test_legal_signals_read_logs_and_calibrations(tmp_path):
    """The report's "what choices may look at": the CAM classifier's last hold-out mAP/F1, the
    L-Net's best hold-out IoU, and each round's calibration on strong images."""
    from c3seg.evaluation.signals import legal_signals, signals_md

    run = Run(tmp_path)
    for stage, rows in {
        "cam": [
            {"epoch": 0, "holdout_map": 0.5, "holdout_f1": 0.4},
            {"epoch": 1, "holdout_map": 0.75, "holdout_f1": 0.6},
        ],
        "lnet": [{"epoch": 0, "holdout_fg_iou": 0.7}, {"epoch": 1, "holdout_fg_iou": 0.65}],
    }.items():
        run.train_log(stage).parent.mkdir(parents=True)
        run.train_log(stage).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r, score in [(0, 50.0), (1, 55.5)]:
        path = run.at_round(r).calibration
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"sources": {"diffusion": {"miou": score, "params": {}}}}))
    with run.train_log("lnet").open("a") as f:
        f.write('{"epoch": 2, "holdout_fg')  # a line cut by a kill is skipped
    s = legal_signals(run, rounds=1)
    assert s["cam_holdout_map"] == 75.0 and s["cam_holdout_f1"] == 60.0  # the last epoch: the checkpoint
    assert s["lnet_holdout_fg_iou"] == 70.0  # the best epoch: the L-Net's checkpoint
    assert s["calibration_round0"] == {"diffusion": 50.0} and s["calibration_round1"] == {"diffusion": 55.5}
    assert "round 1" not in signals_md(legal_signals(run, rounds=0))
    write_report(run, SegData("toy", ("background", "cat"), (), ()), SplitSet("s", ("cat",), ()), {}, None, s)
    assert json.loads(run.report_json.read_text())["signals"] == s
    assert "mAP 75.0, F1 60.0" in run.report_md.read_text()
    assert legal_signals(Run(tmp_path / "empty"), rounds=1) == {}
