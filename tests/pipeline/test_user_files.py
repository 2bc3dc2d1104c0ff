"""What the user owns is never destroyed or misread: predict's --out never overlaps an input, an
output is named after the path given, only c3seg's own temporary files are removed, and caches
live in the cache folder, never in a dataset folder or wherever a command happens to run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from datatrees import write_folder

from c3seg.cli import main
from c3seg.config import CACHE_ENV, DataConfig, load_config, save_config
from c3seg.data.folder import load_folder
from c3seg.inference.api import ModelInfo, Segmenter
from c3seg.inference.predict import expand_inputs, predict_files
from c3seg.io import TMP_MARK, atomic_path, read_label, write_image
from c3seg.models import build_model


def _photos(root: Path) -> Path:
    """A folder of PNG photos, one below a subfolder."""
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "sub/c.png"):
        write_image(root / name, rng.integers(0, 255, (20, 24, 3)).astype(np.uint8))
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _segmenter() -> Segmenter:
    return Segmenter(build_model("tiny", 3), ModelInfo(classes=["background", "cat", "dog"]))


@pytest.mark.parametrize(
    "inputs, out, says",
    [
        (["{p}"], "{p}", "is inside the input"),  # the reported case: photos overwritten by their labels
        (["{p}"], "{p}/pred", "is inside the input"),  # a second run would read the outputs as photos
        (["{p}/*.png"], "{p}/pred", "is inside the input"),  # a glob reads the folder before its wildcard
        (["{p}/a.png"], "{p}", "is inside --out"),  # a.png would be replaced by its label map
        (["{p}/a.png", "{p}/sub"], "{p}/sub/pred", "is inside the input"),
    ],
)
def test_predict_refuses_an_out_that_overlaps_an_input(tmp_path, caplog, inputs, out, says) -> None:
    photos = _photos(tmp_path / "photos")
    before = _files(photos)
    args = ["predict", *(i.format(p=photos) for i in inputs), "--run", str(tmp_path / "no-run")]
    assert main([*args, "--out", out.format(p=photos)]) == 2
    assert says in caplog.text and "choose an --out" in caplog.text
    assert _files(photos) == before  # nothing written, nothing replaced


def test_predict_files_refuses_an_out_holding_its_images(tmp_path) -> None:
    photos = _photos(tmp_path / "photos")
    before = _files(photos)
    with pytest.raises(ValueError, match="is inside --out"):
        predict_files(_segmenter(), expand_inputs([str(photos)]), photos, "pnet")
    assert _files(photos) == before


def test_outputs_are_named_after_the_links_given(tmp_path) -> None:
    photos = _photos(tmp_path / "photos")
    links = tmp_path / "links"
    links.mkdir()
    (links / "first.png").symlink_to(photos / "a.png")
    (links / "second.png").symlink_to(photos / "a.png")  # two links to one file: two outputs
    (links / "more").symlink_to(photos / "sub", target_is_directory=True)
    images = expand_inputs(
        [str(links / "first.png"), str(links / "second.png"), str(links / "more" / "c.png")]
    )
    assert [p.name for p in images] == ["first.png", "second.png", "c.png"]
    out = tmp_path / "out"
    assert predict_files(_segmenter(), images, out, "pnet") == []
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "first.png",
        "more/c.png",
        "second.png",
    ]
    np.testing.assert_array_equal(read_label(out / "first.png"), read_label(out / "second.png"))


def test_temporary_names_say_which_c3seg_process_wrote_them(tmp_path) -> None:
    with atomic_path(tmp_path / "model.pt") as tmp:
        assert tmp.name.startswith(f".model.pt{TMP_MARK}{os.getpid()}-") and tmp.suffix == ".pt"
        tmp.write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_folder_dataset_is_never_written(tmp_path) -> None:
    root = write_folder(tmp_path / "mine")
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}
    cache = tmp_path / "cache"
    for _ in range(2):  # the second load reads the label cache
        data = load_folder(str(root), DataConfig(dataset=f"folder:{root}", root=str(cache)))
        assert len(data.train) == 3
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")} == before
    assert list(cache.rglob("image-labels.json"))


def test_the_cache_folder_is_one_absolute_place(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert DataConfig().root == str(tmp_path / "home" / ".cache" / "c3seg")
    monkeypatch.setenv(CACHE_ENV, "shared-cache")
    assert load_config("tiny").data.root == str(tmp_path / "shared-cache")
    cfg = load_config("tiny", ["data.root=rel/cache"])  # data.root wins over the environment
    assert cfg.data.root == str(tmp_path / "rel" / "cache")
    save_config(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["data"]["root"] == cfg.data.root
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a later command from another folder reads the same cache
    assert load_config(str(tmp_path / "config.yaml")).data.root == cfg.data.root
