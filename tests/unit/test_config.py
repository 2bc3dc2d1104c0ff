import typing
from dataclasses import fields

import pytest
import yaml

from c3seg.config import Config, load_config, save_config


def test_defaults_overrides_and_roundtrip(tmp_path):
    cfg = load_config(None, ["seg.epochs=3", "labels.sigma=0.5", "seg.amp=false", "methods=lnet,pnet"])
    assert cfg.seg.epochs == 3 and cfg.labels.sigma == 0.5 and cfg.seg.amp is False
    assert cfg.methods == ("lnet", "pnet")
    path = save_config(cfg, tmp_path / "config.yaml")
    assert load_config(path) == cfg


def test_list_settings_accept_brackets_and_unknown_methods_fail_early(tmp_path):
    from c3seg.pipeline import check_methods

    assert load_config(None, ["methods=[lnet, pnet]"]).methods == ("lnet", "pnet")
    assert load_config(None, ["labels.scales=[0.75, 1, 1.5]"]).labels.scales == (0.75, 1.0, 1.5)  # numbers
    cfg = load_config(None, ["labels.scales=1,2"])
    assert load_config(save_config(cfg, tmp_path / "c.yaml")) == cfg
    with pytest.raises(ValueError, match="unknown method 'lnett'.*fully-supervised"):
        check_methods(load_config(None, ["methods=lnett"]))


def test_builtin_configs_resolve_to_their_settings():
    bench = load_config("benchmark")
    for tc in (bench.lnet, bench.cam, bench.seg, bench.pretrain):  # from its train: section
        assert (tc.backbone, tc.lr, tc.optimizer, tc.weight_decay) == ("tiny-fast", 0.003, "adamw", 1e-4)
    assert (bench.lnet.epochs, bench.cam.epochs, bench.seg.epochs) == (100, 30, 8)
    assert (bench.affinity.enabled, bench.affinity.epochs, load_config("photos").affinity.enabled) == (True, 20, True)
    assert (bench.lnet.batch_size, bench.cam.batch_size, bench.seg.batch_size) == (16, 16, 16)
    assert (bench.pretrain.batch_size, bench.pretrain.epochs) == (32, 20)  # its own section
    # every network of the benchmark and photos configs starts from the pretrain stage's backbone
    for cfg in (bench, load_config("photos")):
        nets = (cfg.lnet, cfg.affinity, cfg.cam, cfg.seg, cfg.pretrain)
        assert [tc.pretrained for tc in nets] == ["pretrain"] * 4 + [""]
    assert (bench.pretrain.corpus, load_config("photos").pretrain.epochs) == ("shapes", 6)
    assert (bench.lnet.hue, bench.lnet.colour, bench.lnet.affine, bench.cam.hue) == (0.5, True, 25.0, 0.0)
    assert (bench.cam.pool, bench.seg.label_loss, bench.seg.class_balance) == ("gmp", 1.0, 0.25)
    assert (bench.data.bench_train, bench.data.workers, bench.selftrain.rounds) == (2000, 0, 1)
    voc = load_config("voc")
    for tc in (voc.lnet, voc.cam, voc.seg):
        assert (tc.backbone, tc.pretrained) == ("vgg16-largefov", "imagenet")
        assert (tc.lr, tc.head_lr_mult) == (1e-3, 10)
    assert (voc.lnet.batch_size, voc.cam.batch_size, voc.seg.batch_size) == (30, 16, 20)
    assert (voc.data.crop, voc.evaluate.crf, voc.evaluate.crf_methods) == (321, "exact", ("pnet",))
    tiny = load_config("tiny")
    assert (tiny.data.bench_train, tiny.lnet.epochs, tiny.lnet.backbone) == (96, 1, "tiny")


def test_train_section_is_shared_by_every_network_and_overridable(tmp_path):
    from c3seg.config import TRAIN_SECTIONS, TrainConfig

    hints = typing.get_type_hints(Config)
    assert set(TRAIN_SECTIONS) == {f.name for f in fields(Config) if issubclass(hints[f.name], TrainConfig)}
    path = tmp_path / "c.yaml"
    path.write_text("train: {lr: 0.05, epochs: 3}\ncam: {epochs: 5}\n")
    cfg = load_config(path)
    assert [getattr(cfg, s).lr for s in TRAIN_SECTIONS] == [0.05] * len(TRAIN_SECTIONS) == [0.05] * 5
    assert (cfg.pretrain.epochs, cfg.lnet.epochs, cfg.cam.epochs, cfg.seg.epochs) == (3, 3, 5, 3)
    # the command line's train.x beats the file's sections; its own lnet.x beats train.x, in any order
    cfg = load_config(path, ["lnet.epochs=2", "train.epochs=1", "seg.lr=0.1"])
    assert (cfg.pretrain.epochs, cfg.lnet.epochs, cfg.cam.epochs, cfg.seg.epochs) == (1, 2, 1, 1)
    assert (cfg.lnet.lr, cfg.seg.lr) == (0.05, 0.1)
    saved = yaml.safe_load(save_config(cfg, tmp_path / "config.yaml").read_text())
    assert "train" not in saved and saved["cam"]["epochs"] == 1 and saved["lnet"]["lr"] == 0.05  # explicit
    assert load_config(tmp_path / "config.yaml") == cfg
    # pretrained=pretrain for every network: the pretrain stage itself keeps its own setting
    cfg = load_config("benchmark", ["train.pretrained=pretrain"])
    assert [getattr(cfg, s).pretrained for s in ("lnet", "cam", "seg", "pretrain")] == ["pretrain"] * 3 + [""]
    with pytest.raises(KeyError, match="train.pool"):  # only TrainConfig's keys are shared
        load_config(None, ["train.pool=gmp"])
    with pytest.raises(ValueError, match="section"):
        load_config(None, ["train=5"])


def test_bad_settings_say_what_is_valid(tmp_path):
    with pytest.raises(KeyError, match="seg.epoch"):
        load_config(None, ["seg.epoch=3"])
    with pytest.raises(ValueError, match="section.key=value"):
        load_config(None, ["seg.epochs"])
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.seed = 3  # type: ignore[misc]


def test_make_labels_flags_become_settings(monkeypatch, tmp_path):
    import c3seg.pipeline
    from c3seg.cli import main

    seen = {}
    monkeypatch.setattr(
        c3seg.pipeline,
        "run_stages",
        lambda cfg, run, stages, force=False: seen.update(cfg=cfg, stages=stages),
    )
    assert (
        main(["make-labels", "--out", str(tmp_path), "--workers", "4", "--shard", "1/3", "labels.sigma=0.3"])
        == 0
    )
    assert seen["stages"] == ["make-labels"]
    assert (seen["cfg"].labels.workers, seen["cfg"].labels.shard, seen["cfg"].labels.sigma) == (4, "1/3", 0.3)
