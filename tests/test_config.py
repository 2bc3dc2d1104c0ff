import pytest

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


def test_builtin_configs_load():
    for name in ("benchmark", "tiny", "voc"):
        assert isinstance(load_config(name), Config)


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
