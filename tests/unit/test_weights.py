"""Pretrained weights from local files (offline) and torchvision names; nothing is downloaded."""

import logging
import urllib.error

import pytest
import torch

from c3seg.config import load_config
from c3seg.engine.training import checkpoint_dict
from c3seg.io import save_checkpoint
from c3seg.models import build_model
from c3seg.models.backbones import TinyNet
from c3seg.models.weights import load_pretrained, load_state, save_weights


def _same_except_head(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if not key.startswith("head.1."):
            assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("kind", ["state.pt", "checkpoint.pth", "weights.safetensors"])
def test_tiny_weights_reload_with_another_head(tmp_path, caplog, kind):
    source = build_model("tiny", 3)
    with torch.no_grad():  # non-default BN statistics, so that they visibly load too
        source.stem[0][1].running_mean.uniform_()
    path = tmp_path / kind
    if kind == "checkpoint.pth":
        save_checkpoint(path, checkpoint_dict(source, "tiny", 3, epoch=4, holdout_fg_iou=0.5))
    else:
        save_weights(path, source.state_dict())

    with caplog.at_level(logging.INFO, logger="c3seg.models.weights"):
        model = build_model("tiny", 5, str(path))
    _same_except_head(source, model)
    assert model.head[1].weight.shape[0] == 5
    assert "skipped the output layer" in caplog.text and "head.1.weight" in caplog.text
    n = len(source.state_dict()) - 2
    assert f"loaded {n} of {n + 2} tensors" in caplog.text

    same_head = build_model("tiny", 3, str(path))  # same class count: the head loads as well
    assert torch.equal(same_head.head[1].weight, source.head[1].weight)


def test_another_backbones_weights_fail_clearly(tmp_path):
    narrow = tmp_path / "narrow.safetensors"
    save_weights(narrow, TinyNet(3, width=16).state_dict())
    with pytest.raises(
        ValueError,
        match=r"narrow.safetensors does not fit.*\(64, 48, 3, 3\) in the file, \(128, 96, 3, 3\) here",
    ):
        build_model("tiny", 3, str(narrow))

    other = tmp_path / "resnet.pt"
    save_weights(other, {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.bias": torch.zeros(1000)})
    with pytest.raises(ValueError, match="no tensor of .*resnet.pt matches"):
        build_model("tiny", 3, str(other))

    with pytest.raises(FileNotFoundError, match="missing.pt not found; pretrained accepts"):
        build_model("tiny", 3, str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="tiny backbone has no ImageNet weights"):
        build_model("tiny", 3, "imagenet")


def test_unused_and_missing_tensors_are_logged_and_prefixes_found(caplog):
    """Like torchvision's VGG-16 classifier state dict into LargeFOV: extra keys are unused, and
    layers the file lacks keep their initialisation; a module prefix is found by itself."""
    source, model = TinyNet(3), TinyNet(3)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("context.")}
    state["classifier.0.weight"] = torch.zeros(10, 4)
    fresh = TinyNet(3)
    with caplog.at_level(logging.INFO, logger="c3seg.models.weights"):
        load_state(model, state, "vgg-like")
        # a state dict of the sub-network `stage2` (keys "0.0.weight", ... as in stem, stage3 and
        # context, but with stage2's shapes) lands under "stage2."
        load_state(fresh, source.stage2.state_dict(), "stage2 only")
    assert "1 tensors of the file are not in the model: classifier.0.weight" in caplog.text
    assert "keep their random initialisation: context.0.0.weight" in caplog.text
    assert torch.equal(model.stem[0][0].weight, source.stem[0][0].weight)
    assert not torch.equal(model.context[0][0].weight, source.context[0][0].weight)
    assert torch.equal(fresh.stage2[1][0].weight, source.stage2[1][0].weight)
    assert "under 'stage2.'" in caplog.text


def test_boolean_pretrained_settings_still_load(tmp_path):
    yaml = tmp_path / "old.yaml"
    yaml.write_text("lnet: {pretrained: true}\nseg: {pretrained: false}\ncam: {pretrained: none}\n")
    cfg = load_config(yaml)
    assert (cfg.lnet.pretrained, cfg.seg.pretrained, cfg.cam.pretrained) == ("imagenet", "", "")
    cfg = load_config(None, ["lnet.pretrained=false", "seg.pretrained=True", "cam.pretrained=w/x.pt"])
    assert (cfg.lnet.pretrained, cfg.seg.pretrained, cfg.cam.pretrained) == ("", "imagenet", "w/x.pt")
    assert load_config("voc").seg.pretrained == "imagenet"
    assert load_config(None).seg.pretrained == ""
    assert build_model("tiny", 2, False).head[1].out_channels == 2


def test_offline_download_says_which_file_to_put_where(monkeypatch, tmp_path):
    from torchvision.models import VGG16_Weights, WeightsEnum

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = VGG16_Weights.IMAGENET1K_V1.url
    with pytest.raises(RuntimeError) as info:
        load_pretrained(TinyNet(3), "VGG16_Weights.IMAGENET1K_V1")
    message = str(info.value)
    assert url in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]) in message
    assert "pretrained=/path/to/file" in message
    with pytest.raises(ValueError, match="unknown torchvision weights"):
        load_pretrained(TinyNet(3), "VGG16_Weights.NO_SUCH")
