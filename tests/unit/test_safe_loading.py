"""Checkpoints load without unpickling code, and mismatches are refused with both sides named."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from c3seg.engine.training import checkpoint_dict, load_model
from c3seg.io import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from c3seg.models import build_model

MARKER = "c3seg-test-pwned"


class Payload:
    """Unpickling this writes a marker file: a stand-in for any code a crafted checkpoint could run."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({str(Path.cwd() / MARKER)!r}, 'w').write('ran')",))


def test_crafted_pickle_is_refused_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.pt"
    torch.save({"model": Payload(), "backbone": "tiny", "out_channels": 3}, path)
    with open(tmp_path / "legacy.pt", "wb") as f:  # a bare pickle, as torch's legacy format starts
        pickle.dump({"model": Payload()}, f)
    with pytest.raises(ValueError, match="cannot be read|not a c3seg checkpoint"):
        load_checkpoint(tmp_path / "legacy.pt")
    with pytest.raises(ValueError, match="not a c3seg checkpoint.*could run code"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="not a c3seg checkpoint"):
        load_model(path)
    assert not (tmp_path / MARKER).exists()


def test_checkpoint_round_trip_is_stamped(tmp_path: Path) -> None:
    model = build_model("tiny", 3)
    path = save_checkpoint(tmp_path / "m.pt", checkpoint_dict(model, "tiny", 3, epoch=4))
    ck = load_checkpoint(path)
    assert ck["format"] == CHECKPOINT_FORMAT and ck["epoch"] == 4 and "c3seg" in ck
    again = load_model(path)  # eval mode, channels_last (the memory layout inference uses)
    for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(again(x), model.to(memory_format=torch.channels_last).eval()(x))


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", checkpoint_dict(build_model("tiny", 3), "tiny", 3))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated or not a PyTorch file"):
        load_checkpoint(path)
    other = tmp_path / "list.pt"
    torch.save([1, 2], other)
    with pytest.raises(ValueError, match="not a c3seg checkpoint dict"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="run 'c3seg run --stages train-lnet' first"):
        load_checkpoint(tmp_path / "missing.pt", "train-lnet")


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.save({"format": CHECKPOINT_FORMAT + 1, "c3seg": "9.0", "model": {}}, path)
    with pytest.raises(ValueError, match="upgrade c3seg"):
        load_checkpoint(path)


def test_mismatches_name_both_sides(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", checkpoint_dict(build_model("tiny", 3), "tiny", 3))
    with pytest.raises(ValueError, match="predicts 3 classes, but this run has 5"):
        load_model(path, expect_channels=5)
    wrong = checkpoint_dict(build_model("tiny", 4), "tiny", 3)  # says 3 outputs, holds 4
    save_checkpoint(tmp_path / "w.pt", wrong)
    with pytest.raises(ValueError, match="backbone 'tiny' with 3 outputs, but its weights do not fit"):
        load_model(tmp_path / "w.pt")
    save_checkpoint(tmp_path / "u.pt", {"model": {}, "backbone": "nope", "out_channels": 3})
    with pytest.raises(ValueError, match="'nope' network"):
        load_model(tmp_path / "u.pt")
    save_checkpoint(tmp_path / "s.pt", {"weights": {}})
    with pytest.raises(ValueError, match="no model, backbone, out_channels"):
        load_model(tmp_path / "s.pt")


def test_no_unsafe_load_in_the_package() -> None:
    root = Path(__file__).resolve().parents[2] / "c3seg"
    offenders = [p for p in root.rglob("*.py") if "weights_only=False" in p.read_text()]
    assert offenders == []
