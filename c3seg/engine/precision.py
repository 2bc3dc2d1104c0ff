"""What a training stage's `precision` and `compile` settings (c3seg.config.TrainConfig) mean on
a device, and whether this CPU computes bf16 natively.

    precision  auto: bf16 autocast on CUDA and on a CPU with native bf16 (CPU_AUTO_BF16), else fp32
               fp32: fp32 on every device | bf16: bf16 autocast on every device
    compile    auto: off (see COMPILE_AUTO) | on: torch.compile (inductor) | off: eager
`amp: false` (the older switch) means fp32 whatever `precision` says.
"""

from __future__ import annotations

import functools
import logging

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("auto", "on", "off")
# compile=auto per device type. CPU: off: `c3seg bench train` (tiny-fast, crop 96, batch 16, one
# thread, docs/results.md) timed no real-loop gain in fp32 (69.5 img/s compiled, 69.4 eager),
# 1.2-1.5x in bf16 (runs on a shared, busy VM), against 40-65 s of compiling per network, about
# what a train-seg unit of the benchmark (8 epochs) would save in bf16. CUDA: off, not measured.
COMPILE_AUTO = {"cpu": False, "cuda": False}
# Whether precision=auto trains in bf16 on CPUs with native bf16: `c3seg bench train` measures bf16
# at about 1.5x fp32's real-loop speed on such a CPU, and the benchmark's weak ratio over fresh draws
# in bf16 stays within the draw-to-draw spread of fp32's (docs/results.md). False: fp32 on every CPU.
CPU_AUTO_BF16 = True
# CPU features that make bf16 matmuls and convolutions native rather than emulated
# (torch.cpu.get_capabilities names: x86 AVX512-BF16 / AMX, ARM BF16 / SVE-BF16)
BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


@functools.cache
def cpu_bf16() -> bool:
    """Whether this CPU runs bf16 natively: oneDNN is built in and accepts bf16, and the CPU
    reports one of BF16_FEATURES. (oneDNN alone accepts bf16 on any AVX-512 CPU, where it is
    emulated and slower than fp32.)"""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        return False
    caps = torch.cpu.get_capabilities()
    return any(bool(caps.get(f, False)) for f in BF16_FEATURES)


def resolve_bf16(precision: str, device: torch.device, amp: bool = True) -> bool:
    """Whether to train and score in bf16 autocast with `precision` on `device`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose {', '.join(PRECISIONS)}")
    if not amp or precision == "fp32":
        return False
    if precision == "bf16":
        if device.type == "cpu" and not cpu_bf16():
            _warn_emulated()
        return True
    return device.type == "cuda" or (device.type == "cpu" and CPU_AUTO_BF16 and cpu_bf16())


@functools.cache
def _warn_emulated() -> None:
    log.warning("precision=bf16 on a CPU without native bf16: emulated, slower than fp32")


def resolve_compile(setting: str, device: torch.device) -> bool:
    """Whether to torch.compile the training network with `setting` (auto | on | off) on `device`."""
    if setting not in COMPILE_MODES:
        raise ValueError(f"compile={setting!r}: choose {', '.join(COMPILE_MODES)}")
    if setting == "auto":
        return COMPILE_AUTO.get(device.type, False)
    return setting == "on"
