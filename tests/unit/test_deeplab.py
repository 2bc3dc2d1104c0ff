"""DeepLab-LargeFOV as DeepLab trained it (#10 item 2), on CPU with random weights."""

import pytest
import torch
from torch import nn

from c3seg.config import TrainConfig, load_config
from c3seg.engine.training import make_optimizer, set_lr
from c3seg.models import build_model
from c3seg.models.weights import load_state


def test_fc6_fc7_are_decimated_from_vgg_fully_connected_layers() -> None:
    model = build_model("vgg16-largefov", 21)
    g = torch.Generator().manual_seed(0)
    vgg = {
        k: torch.randn(v.shape, generator=g)
        for k, v in model.state_dict().items()
        if k.startswith("features.")
    }
    vgg["classifier.0.weight"] = torch.randn(4096, 512 * 7 * 7, generator=g)
    vgg["classifier.0.bias"] = torch.randn(4096, generator=g)
    vgg["classifier.3.weight"] = torch.randn(4096, 4096, generator=g)
    vgg["classifier.3.bias"] = torch.randn(4096, generator=g)
    vgg["classifier.6.weight"] = torch.randn(1000, 4096, generator=g)  # ImageNet's classifier: not taken
    vgg["classifier.6.bias"] = torch.randn(1000, generator=g)
    fc8 = model.fc8.weight.detach().clone()
    load_state(model, vgg, "fake VGG-16")
    w6 = vgg["classifier.0.weight"].view(4096, 512, 7, 7)
    assert torch.equal(model.fc6.weight, w6[::4, :, ::3, ::3])
    assert torch.equal(model.fc6.weight[5, 7, 1, 2], w6[20, 7, 3, 6])
    assert torch.equal(model.fc6.bias, vgg["classifier.0.bias"][::4])
    assert torch.equal(model.fc7.weight[:, :, 0, 0], vgg["classifier.3.weight"][::4, ::4])
    assert torch.equal(model.fc7.bias, vgg["classifier.3.bias"][::4])
    assert torch.equal(model.fc8.weight, fc8)
    assert torch.equal(model.features[0].weight, vgg["features.0.weight"])


def test_classifier_learns_at_ten_times_the_rate() -> None:
    model = build_model("vgg16-largefov", 21)
    opt = make_optimizer(model, TrainConfig(optimizer="sgd", lr=1e-3, head_lr_mult=10))
    head = {id(p) for p in model.fc8.parameters()}
    groups = {tuple(sorted(id(p) for p in g["params"])): g for g in opt.param_groups}
    assert len(opt.param_groups) == 2
    set_lr(opt, 2e-4)  # a point of the poly schedule
    for ids, g in groups.items():
        assert g["lr"] == pytest.approx(2e-3 if set(ids) == head else 2e-4)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    assert len(make_optimizer(model, TrainConfig()).param_groups) == 1  # head_lr_mult 1: one group


def test_dropout_is_deeplabs_element_wise_half() -> None:
    model = build_model("vgg16-largefov", 21)
    assert type(model.drop) is nn.Dropout and model.drop.p == 0.5
    model.train()
    out = model.drop(torch.ones(1, 8, 16, 16))
    per_channel = (out == 0).float().mean((0, 2, 3))
    assert ((per_channel > 0) & (per_channel < 1)).all()  # units, not whole channels, are dropped


def test_voc_config_is_deeplabs_schedule() -> None:
    cfg = load_config("voc")
    for tc in (cfg.lnet, cfg.cam, cfg.seg):
        assert tc.backbone == "vgg16-largefov" and tc.pretrained == "imagenet"
        assert tc.optimizer == "sgd" and tc.lr == 1e-3 and tc.momentum == 0.9 and tc.weight_decay == 5e-4
        assert tc.head_lr_mult == 10
    assert 20 <= cfg.seg.batch_size <= 30
