"""tools/ceiling.py (protocol-breaking ceilings, evaluation only) on a tiny run of a toy folder."""

import importlib.util
import re
from pathlib import Path

import numpy as np
from toydata import make

import c3seg.stages.train_lnet as train_lnet_stage
from c3seg.cli import main
from c3seg.engine.run import Run
from c3seg.io import read_image, read_label, write_image, write_label_png

TOOL = Path(__file__).resolve().parents[2] / "tools" / "ceiling.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("ceiling", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_run(tmp: Path) -> Run:
    """A VOC-layout folder (every image with its mask) and a run with lnet, cam and labels."""
    toy = make(tmp / "toy", n_train=16, n_val=4, size=40)
    root = tmp / "data"
    for split, samples in (("train", toy.train), ("val", toy.val)):
        for s in samples:
            write_image(root / "JPEGImages" / f"{s.id}.jpg", read_image(s.image))
            write_label_png(root / "SegmentationClass" / f"{s.id}.png", read_label(s.mask))
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(
            "".join(f"{s.id}\n" for s in samples)
        )
    (root / "classes.txt").write_text("\n".join(toy.classes) + "\n")
    (tmp / "split.yaml").write_text("strong: [red]\n")
    out = tmp / "run"
    args = ["run", "--dataset", f"folder:{root}", "--split", str(tmp / "split.yaml"), "--out", str(out)]
    args += ["--config", "tiny", "--stages", "train-lnet,train-cam,make-labels", "methods=lnet"]
    args += ["data.crop=32", f"data.root={tmp / 'cache'}", "labels.n_segments=30", "data.holdout=0.2"]
    assert main(args) == 0
    return Run(out)


def test_oracle_m_pseudo_and_lnet_all(tmp_path, capsys):
    ceiling, run = load_tool(), toy_run(tmp_path)
    labels = sorted(run.labels_dir("diffusion").glob("*.png"))
    assert labels
    before = {p: p.stat().st_mtime_ns for p in labels}

    ceiling.oracle_m(run)
    assert f"wrote {len(labels)} oracle-M labels" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns != t for p, t in before.items())
    assert all(np.isin(read_label(p), [0, 1, 2, 3, 255]).all() for p in labels)

    ceiling.pseudo(run, 4)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["real", "oracle M", "oracle CAM", "both"]
    both = float(re.search(r"weak classes ([\d.]+)", lines[-1]).group(1))
    assert 0 <= both <= 100

    own = train_lnet_stage.lnet_pairs
    ceiling.lnet_all(run)
    assert re.search(r"L-Net on all \d+ training masks", capsys.readouterr().out)
    assert run.checkpoint("lnet").exists()
    assert train_lnet_stage.lnet_pairs is own, "the stage's own pairs are restored"
