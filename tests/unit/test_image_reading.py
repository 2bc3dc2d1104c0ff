"""One way to read an image everywhere (c3seg.io.read_image): 16-bit greyscale scaled to 8 bits,
EXIF orientation applied (training, prediction, data check), masks matched to the turned image."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from datatrees import H, W, write_folder, write_turned_jpeg
from PIL import Image

from c3seg.data.check import check_command
from c3seg.io import read_image, read_label


def _portrait(h: int = 40, w: int = 20) -> np.ndarray:
    """(h, w, 3): top half white, bottom half black (as a photo viewer shows it)."""
    im = np.zeros((h, w, 3), np.uint8)
    im[: h // 2] = 255
    return im


def test_sixteen_bit_photos_are_scaled_not_white(tmp_path: Path) -> None:
    Image.fromarray(np.full((6, 8), 40000, np.uint16)).save(tmp_path / "grey16.png")  # mode I;16
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    got = read_image(tmp_path / "grey16.png")
    assert got.shape == (6, 8, 3) and got.dtype == np.uint8
    assert np.all(got == round(40000 * 255 / 65535))  # 156, not 255 (PIL's convert clips to white)
    Image.fromarray(np.full((4, 4), 65535, np.int32)).save(tmp_path / "full.tif")  # mode I
    assert np.all(read_image(tmp_path / "full.tif") == 255)
    Image.fromarray(np.full((4, 4), 70000, np.int32)).save(tmp_path / "big.tif")
    with pytest.raises(ValueError, match=r"big\.tif: a mode-I image with values outside 0..65535"):
        read_image(tmp_path / "big.tif")


def test_exif_orientation_is_applied_when_reading(tmp_path: Path) -> None:
    f = write_turned_jpeg(tmp_path / "phone.jpg", _portrait(), orientation=6)
    assert Image.open(f).size == (40, 20)  # stored landscape: 40 wide, 20 high
    got = read_image(f)
    assert got.shape == (40, 20, 3)  # displayed portrait
    assert got[:18].mean() > 200 and got[22:].mean() < 50  # upright, not sideways
    upside_down = write_turned_jpeg(tmp_path / "flip.jpg", _portrait(), orientation=3)
    assert read_image(upside_down)[:18].mean() > 200


def test_predict_writes_labels_as_the_photo_is_displayed(tmp_path: Path) -> None:
    from c3seg.inference.predict import predict_files

    class Brightness:  # a stand-in network: label 1 where the image is bright
        def predict_batch(self, images, crf="none", batch_size=8):
            return [(im[..., 0] > 128).astype(np.uint8) for im in images]

    f = write_turned_jpeg(tmp_path / "in" / "phone.jpg", _portrait(), orientation=6)
    assert predict_files(Brightness(), [f], tmp_path / "out", "pnet", progress=False) == []  # type: ignore[arg-type]
    label = read_label(tmp_path / "out" / "phone.png")
    assert label.shape == (40, 20) and label[:18].all() and not label[22:].any()


def _folder_with_turned_image(tmp_path: Path) -> Path:
    """write_folder's dataset whose image `a` is a phone JPEG (stored W x H, EXIF orientation 6);
    its mask a.png is drawn on the displayed H x W image."""
    root = write_folder(tmp_path / "mine")
    displayed = np.random.default_rng(0).integers(0, 255, (H, W, 3)).astype(np.uint8)
    write_turned_jpeg(root / "JPEGImages" / "a.jpg", displayed, orientation=6)
    return root


def test_a_mask_drawn_on_the_displayed_photo_trains(tmp_path: Path, capsys) -> None:
    from c3seg.config import DataConfig
    from c3seg.data.folder import load_folder
    from c3seg.data.torchdata import PairSet
    from c3seg.data.transforms import eval_transform

    root = _folder_with_turned_image(tmp_path)
    data = load_folder(str(root), DataConfig(root=str(tmp_path / "cache")))
    a = next(s for s in data.train if s.id == "a")
    image, mask, _ = PairSet([(a.image, a.mask)], eval_transform())[0]
    assert tuple(image.shape[-2:]) == tuple(mask.shape[-2:]) == (H, W)
    rc = check_command(argparse.Namespace(dataset=f"folder:{root}", split=None))
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"a.jpg: EXIF orientation 6 turns the stored {W}x{H} pixels to {H}x{W} when read" in out
    assert "1 warning(s)" in out and "OK: no problems found (see the warnings)" in out


def test_data_check_names_masks_drawn_on_the_stored_pixels_and_sixteen_bit_images(
    tmp_path: Path, capsys
) -> None:
    from c3seg.io import write_label_png

    root = _folder_with_turned_image(tmp_path)
    write_label_png(root / "SegmentationClass" / "a.png", np.zeros((W, H), np.uint8))  # stored shape
    Image.fromarray(np.full((H, W), 30000, np.uint16)).save(root / "JPEGImages" / "v.png")
    (root / "JPEGImages" / "v.jpg").unlink()
    rc = check_command(argparse.Namespace(dataset=f"folder:{root}", split=None))
    out = capsys.readouterr().out
    assert rc == 1, out
    assert f"a.png: mask is {W}x{H} but its image is {H}x{W} as displayed (after its EXIF orientation)" in out
    assert "v.png: a 16-bit (I;16) image, scaled to 8 bits when read" in out
