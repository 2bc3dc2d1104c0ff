"""Using what was trained: the Python API, `c3seg predict` on folders, exports (safetensors, ONNX)."""

import shutil

import numpy as np
import pytest

import c3seg
from c3seg.cli import main
from c3seg.io import read_image, read_label, write_image


@pytest.fixture(scope="module")
def photos(quick_run, tmp_path_factory):
    """A folder tree of real benchmark images: two share a file stem in different folders, one
    shares a stem with a .jpg beside it, and sizes differ."""
    run, _ = quick_run
    src = sorted((run.parent / "data").rglob("*.jpg"))[:5]
    assert len(src) == 5
    root = tmp_path_factory.mktemp("photos")
    (root / "a").mkdir()
    (root / "b" / "c").mkdir(parents=True)
    shutil.copy(src[0], root / "a" / "x.jpg")
    shutil.copy(src[1], root / "b" / "c" / "x.jpg")
    write_image(root / "b" / "y.png", read_image(src[2])[:50, :70])  # another size, PNG
    shutil.copy(src[3], root / "b" / "y.jpg")  # same stem as y.png in the same folder
    shutil.copy(src[4], root / "z.jpg")
    return root


def test_api_and_cli_predict_the_same(quick_run, photos, tmp_path):
    run, _ = quick_run
    seg = c3seg.load(run, method="pnet")
    assert seg.classes[0] == "background" and set(seg.strong) | set(seg.weak) == set(seg.classes[1:])
    out = tmp_path / "pred"
    assert (
        main(["predict", str(photos), "--run", str(run), "--out", str(out), "--overlay", "--batch-size", "3"])
        == 0
    )
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["a/x.png", "b/c/x.png", "b/y.jpg.png", "b/y.png.png", "z.png"]
    assert (out / "z_overlay.jpg").exists()
    images = {p: read_image(photos / p) for p in ["a/x.jpg", "b/c/x.jpg", "b/y.png", "b/y.jpg", "z.jpg"]}
    batch = seg.predict_batch(list(images.values()), batch_size=4)
    for (name, image), from_batch in zip(images.items(), batch, strict=True):
        label, prob = seg.predict(image, probs=True)
        assert label.shape == image.shape[:2] and label.dtype == np.uint8
        assert prob.shape == (len(seg.classes), *image.shape[:2])
        np.testing.assert_array_equal(label, from_batch)
        target = {"b/y.png": "b/y.png.png", "b/y.jpg": "b/y.jpg.png"}.get(name, name[:-4] + ".png")
        np.testing.assert_array_equal(read_label(out / target), label)
    m = seg.foreground(images["z.jpg"])
    assert m.shape == images["z.jpg"].shape[:2] and 0 <= m.min() and m.max() <= 1


def test_predict_skips_unreadable_images_and_fails_at_the_end(quick_run, photos, tmp_path):
    run, _ = quick_run
    bad = tmp_path / "in"
    shutil.copytree(photos, bad)
    (bad / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "pred"
    assert main(["predict", str(bad), "--run", str(run), "--out", str(out)]) == 1
    assert len(list(out.rglob("*.png"))) == 5  # the readable ones are all there
    assert (
        main(
            [
                "predict",
                str(bad / "*.jpg"),
                "--run",
                str(run),
                "--out",
                str(out),
                "--method",
                "lnet-foreground",
            ]
        )
        == 1
    )
    assert set(np.unique(read_label(out / "z.png")).tolist()) <= {0, 1}
    assert main(["predict", str(tmp_path / "nothing-here"), "--run", str(run), "--out", str(out)]) == 2


def test_export_reloads_to_identical_predictions(quick_run, photos, tmp_path):
    run, _ = quick_run
    seg = c3seg.load(run, method="lnet")
    f = tmp_path / "model.safetensors"
    assert main(["export", "--run", str(run), "--method", "lnet", "--out", str(f)]) == 0
    shipped = c3seg.load(f)
    assert shipped.classes == seg.classes and shipped.weak == seg.weak and shipped.info.method == "lnet"
    assert shipped.info.config["data"]["split"] == seg.info.config["data"]["split"]
    assert shipped.info.metrics == seg.info.metrics and "miou" in shipped.info.metrics
    image = read_image(photos / "z.jpg")
    np.testing.assert_array_equal(shipped.predict(image), seg.predict(image))
    np.testing.assert_array_equal(shipped.foreground(image), seg.foreground(image))
    with pytest.raises(ValueError, match="not a c3seg export|not a safetensors"):
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(b"\x00" * 64)
        c3seg.load(bad)
    with pytest.raises(FileNotFoundError, match="no trained 'nope' network; it has"):
        c3seg.load(run, method="nope")


def test_onnx_export_matches_pytorch(quick_run, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from c3seg.inference.export import ONNX_TOLERANCE, export_onnx

    run, _ = quick_run
    seg = c3seg.load(run, method="pnet", lnet=False)
    diff = export_onnx(seg, tmp_path / "model.onnx", size=(64, 80))
    assert 0 <= diff <= ONNX_TOLERANCE
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)  # another size
    prob = session.run(None, {"image": image.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
    _, ref = seg.predict(image, probs=True)
    assert np.abs(prob - ref).max() <= ONNX_TOLERANCE


def test_torch_hub_loads_a_run(quick_run):
    import torch

    run, _ = quick_run
    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    seg = torch.hub.load(str(repo), "c3seg", source="local", path=str(run), method="lnet", trust_repo=True)
    direct = c3seg.load(run, method="lnet")
    assert seg.classes == direct.classes
    image = read_image(sorted((run.parent / "data").rglob("*.jpg"))[0])
    label, prob = seg.predict(image, probs=True)
    assert label.shape == image.shape[:2] and label.dtype == np.uint8
    assert label.max() < len(seg.classes)
    assert prob.shape == (len(seg.classes), *image.shape[:2]) and prob.min() >= 0 and prob.max() <= 1
    np.testing.assert_allclose(prob.sum(0), 1, atol=1e-4)
    np.testing.assert_array_equal(label, prob.argmax(0))
    np.testing.assert_array_equal(label, direct.predict(image))  # the run's own network


def test_version_and_verbose_tracebacks(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert c3seg.__version__ in capsys.readouterr().out
    assert main(["predict", "nowhere.jpg", "--run", "nowhere", "--out", "x"]) == 2
    with pytest.raises(FileNotFoundError):
        main(["-v", "predict", "nowhere.jpg", "--run", "nowhere", "--out", "x"])
