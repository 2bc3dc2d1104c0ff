import numpy as np
import pytest
import torch

from c3seg.inference.api import ModelInfo, Segmenter
from c3seg.inference.crf import dense_crf
from c3seg.inference.predict import overlay
from c3seg.io import read_label
from c3seg.models import build_model


def _two_region_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = 64, 96
    truth = np.zeros((h, w), np.int64)
    truth[:, 40:] = 1
    image = np.where(truth[..., None] == 1, [200, 40, 40], [40, 40, 200]).astype(np.float64)
    image = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    p1 = np.where(truth == 1, 0.65, 0.35) + rng.normal(0, 0.25, truth.shape)  # noisy, often wrong
    p1 = np.clip(p1, 0.01, 0.99)
    return image, np.stack([1 - p1, p1]).astype(np.float32), truth


def test_crf_cleans_noisy_predictions_along_colour_edges():
    image, prob, truth = _two_region_case()
    before = (prob.argmax(0) == truth).mean()
    after = (dense_crf(image, prob).argmax(0) == truth).mean()
    assert before < 0.9
    assert after > before + 0.05


def test_crf_keeps_shape_and_normalization():
    image, prob, _ = _two_region_case(1)
    out = dense_crf(image, prob, iters=3)
    assert out.shape == prob.shape
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-4)


def test_predict_image_and_overlay(tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny", 3).eval()
    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    seg = Segmenter(model, ModelInfo(classes=["background", "a", "b"]))
    label = seg.predict(image)
    assert label.shape == (40, 56) and label.dtype == np.uint8 and label.max() < 3
    assert overlay(image, label).shape == image.shape
    label_crf = seg.predict(image, crf="fast")
    assert label_crf.shape == (40, 56)
    with pytest.raises(ValueError, match="crf='dense'"):
        seg.predict(image, crf="dense")
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        seg.predict(image.astype(np.float32))
    from c3seg.io import write_label_png

    write_label_png(tmp_path / "x.png", label)
    np.testing.assert_array_equal(read_label(tmp_path / "x.png"), label)


def test_bench_crf_times_both_sizes(capsys):
    import json

    from c3seg.cli import main

    assert main(["bench", "crf", "--json", "--repeats", "1"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["crf"]
    assert [r["size"] for r in rows] == ["500x375", "112x112"]
    assert all(r["fast_cpu_ms"] > 0 for r in rows)


def test_bench_train_reports_model_and_loop_throughput(capsys):
    import json

    from c3seg.cli import main
    from c3seg.config import load_config
    from c3seg.engine.precision import cpu_bf16

    args = ["bench", "train", "--json", "--steps", "2", "--batch", "4", "--crop", "48", "--workers", "0"]
    assert main([*args, "--rows", "fp32-eager,channels_last", "--peak-n", "256"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = out["train"]
    seg_backbone = load_config("benchmark").seg.backbone  # bench train's default config
    # the benchmark config trains eager and contiguous on CPU, in bf16 where the CPU has it natively:
    # `default` is then timed as the bf16 variant, else it is fp32-eager's row
    assert [r["name"] for r in rows] == ["fp32-eager", "channels_last", "default"]
    if cpu_bf16():
        assert (rows[-1]["same_as"], rows[-1]["bf16"], rows[-1]["channels_last"]) == ("bf16", True, False)
    else:
        assert rows[-1] == {**rows[0], "name": "default", "same_as": "fp32-eager"}
    assert [(r["bf16"], r["channels_last"], r["compile"]) for r in rows[:2]] == [
        (False, False, False),
        (False, True, False),
    ]
    for row in rows:
        assert row["backbone"] == seg_backbone and row["device"] == "cpu"
        for key in ("model_train_img_s", "loop_img_s", "infer_img_s", "train_gflop_s"):
            assert row[key] > 0
        assert row["loop_over_model"] == pytest.approx(row["loop_img_s"] / row["model_train_img_s"], rel=0.01)
    assert out["peak"]["fp32_gflop_s"] > 0 and out["peak"]["bf16_gflop_s"] > 0
