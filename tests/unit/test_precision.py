"""Training precision and compilation settings (c3seg.engine.precision): parsing, what `auto`
means on each device, a bf16 training step on CPU, torch.compile in `prepare`."""

import pytest
import torch
import torch.nn.functional as F

from c3seg.config import SegConfig, load_config, save_config
from c3seg.engine import precision
from c3seg.engine.training import autocast, prepare, unwrap, use_bf16
from c3seg.models import build_model
from c3seg.models.common import upsample

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_settings_parse_validate_and_round_trip(tmp_path):
    cfg = load_config(None, ["seg.precision=bf16", "lnet.compile=on", "cam.precision=fp32"])
    assert (cfg.seg.precision, cfg.lnet.compile, cfg.cam.precision) == ("bf16", "on", "fp32")
    assert (cfg.pretrain.precision, cfg.pretrain.compile) == ("auto", "auto")  # defaults
    assert load_config(save_config(cfg, tmp_path / "c.yaml")) == cfg
    yaml = tmp_path / "onoff.yaml"  # YAML reads bare on / off as booleans
    yaml.write_text("seg: {compile: off}\nlnet: {compile: on}\n")
    cfg = load_config(yaml)
    assert (cfg.seg.compile, cfg.lnet.compile) == ("off", "on")
    with pytest.raises(ValueError, match=r"seg\.precision='fp16': choose auto, fp32 or bf16"):
        load_config(None, ["seg.precision=fp16"])
    with pytest.raises(ValueError, match=r"cam\.compile='maybe': choose auto, on or off"):
        load_config(None, ["cam.compile=maybe"])
    with pytest.raises(ValueError, match="amp=false"):
        load_config(None, ["seg.precision=bf16", "seg.amp=false"])


@pytest.mark.parametrize("native", [True, False])
def test_shipped_configs_train_in_bf16_where_the_cpu_has_it(monkeypatch, native):
    """auto: bf16 autocast on a CPU with native bf16 and on CUDA, fp32 on other CPUs; eager."""
    monkeypatch.setattr(precision, "cpu_bf16", lambda: native)
    for name in ("benchmark", "tiny", "photos"):
        cfg = load_config(name)
        for section in (cfg.lnet, cfg.cam, cfg.seg, cfg.pretrain):
            assert (section.precision, section.compile) == ("auto", "auto")
            assert use_bf16(section, CPU) is native and use_bf16(section, CUDA)
            assert not precision.resolve_compile(section.compile, CPU)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_follows_the_device(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_bf16", lambda: native)
    auto = SegConfig()
    assert use_bf16(auto, CPU) is native
    monkeypatch.setattr(precision, "CPU_AUTO_BF16", False)  # the switch: fp32 on every CPU
    assert use_bf16(auto, CPU) is False
    monkeypatch.setattr(precision, "CPU_AUTO_BF16", True)
    assert use_bf16(auto, CUDA) is True  # as amp did
    assert use_bf16(SegConfig(amp=False), CUDA) is False  # amp: false still means fp32
    assert use_bf16(SegConfig(precision="fp32"), CUDA) is False
    assert use_bf16(SegConfig(precision="bf16"), CPU) is True  # asked for: even emulated
    assert precision.resolve_compile("auto", CPU) is False
    assert precision.resolve_compile("on", CPU) is True and precision.resolve_compile("off", CUDA) is False


def test_cpu_bf16_needs_onednn_and_a_native_feature(monkeypatch):
    precision.cpu_bf16.cache_clear()
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert precision.cpu_bf16() is False
    precision.cpu_bf16.cache_clear()
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_f": True})  # AVX-512, no BF16
    assert precision.cpu_bf16() is False
    precision.cpu_bf16.cache_clear()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    assert precision.cpu_bf16() is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    precision.cpu_bf16.cache_clear()


@pytest.mark.skipif(not precision.cpu_bf16(), reason="this CPU has no native bf16")
def test_a_bf16_training_step_runs_on_cpu():
    torch.manual_seed(0)
    tc = SegConfig(backbone="tiny-fast", precision="bf16")
    model = prepare(build_model(tc.backbone, 5), CPU, tc).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 5, (2, 32, 32))
    with autocast(CPU, use_bf16(tc, CPU)):
        out = model(x)
        logits = upsample(out, y.shape[-2:]).float()
    assert out.dtype == torch.bfloat16
    loss = F.cross_entropy(logits, y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_prepare_compiles_when_asked_and_unwrap_gives_the_plain_network():
    net = build_model("tiny-fast", 3)
    eager = prepare(net, CPU, SegConfig(compile="off"))
    assert eager is net
    compiled = prepare(net, CPU, SegConfig(compile="on"))  # compiles lazily, at its first call
    assert compiled is not net and unwrap(compiled) is net
    assert list(unwrap(compiled).state_dict()) == list(net.state_dict())  # no _orig_mod. prefix



def test_no_stage_reads_amp_past_the_precision_setting():
    """Every autocast and hold-out score takes its bf16 flag from use_bf16 (the precision setting):
    a stage passing `tc.amp` straight to autocast trained in bf16 on every CPU whatever it said."""
    import re
    from pathlib import Path

    import c3seg

    root = Path(c3seg.__file__).parent
    offenders = [
        f"{p.relative_to(root)}:{i}"
        for p in root.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\b\w+\.amp\b", line) and p.name not in ("config.py", "training.py", "precision.py")
    ]
    assert offenders == []
