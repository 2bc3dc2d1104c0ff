"""Pretrained weights: torchvision weights by name, or local files that work offline.

    load_pretrained(model, "VGG16_Weights.IMAGENET1K_V1")    # torchvision, downloaded once
    load_pretrained(model, "runs/pretrain/backbone.safetensors")
    save_weights("backbone.safetensors", model.state_dict())  # what a pretrain stage writes

A file is a PyTorch state dict (.pt/.pth, read with `weights_only=True`), a checkpoint dict with
a "model" key (c3seg's own checkpoints), or a .safetensors file. Tensors are matched by name (a
prefix such as torchvision's ResNet-50 keys under DeepLabV3's `net.backbone.` is found by
itself) and shape; the model's output layer (its `head_key`) is skipped when its class count
differs, and any other mismatch is an error.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from c3seg.io import atomic_path

log = logging.getLogger(__name__)

ACCEPTED = (
    "'' or none (from scratch), imagenet, a torchvision weights name such as "
    "VGG16_Weights.IMAGENET1K_V1, or a .pt/.pth/.safetensors file"
)
_TORCHVISION_NAME = re.compile(r"^\w+_Weights\.\w+$")


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor]) -> Path:
    """Write a state dict that `pretrained=<path>` reads back: safetensors for a .safetensors
    suffix, otherwise `torch.save` (.pt/.pth). Written atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(tensors, str(tmp))
        else:
            torch.save(tensors, tmp)
    return Path(path)


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file, a state dict, or a checkpoint's "model" state dict."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights {path} not found; pretrained accepts {ACCEPTED}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds more than tensors and plain values, so it is not loaded (weights_only=True); "
            "re-save its state dict with c3seg.models.weights.save_weights"
        ) from err
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):  # c3seg's checkpoint_dict; other trainers' checkpoints
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a state dict (name -> tensor) nor a checkpoint with a 'model' key")
    return obj


def torchvision_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The state dict of torchvision weights such as "ResNet50_Weights.IMAGENET1K_V2", from torch
    hub's cache or downloaded into it; without internet, says which file to put where."""
    from torchvision.models import get_weight

    try:
        weights = get_weight(name)
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"unknown torchvision weights {name!r} ({err}); pretrained accepts {ACCEPTED}"
        ) from err
    try:
        return weights.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except (OSError, RuntimeError) as err:  # urllib's URLError is an OSError
        target = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
        raise RuntimeError(
            f"could not download {name} ({err}). Without internet, fetch {weights.url} elsewhere and "
            f"put it at {target}; or give a local file instead: pretrained=/path/to/file "
            "(.pt/.pth state dict or .safetensors), which works offline"
        ) from err


def load_pretrained(model: nn.Module, spec: str) -> nn.Module:
    """Load `spec` (a local file, else a torchvision weights name) into `model`, in place."""
    path = Path(spec).expanduser()
    if path.is_file() or not _TORCHVISION_NAME.match(spec):
        load_state(model, read_weights(path), str(path))
    else:
        load_state(model, torchvision_state_dict(spec), spec)
    return model


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy the tensors of `state` whose names and shapes fit into `model`; log what was loaded.

    The output layer (the model's `head_key`, e.g. "fc8") is skipped when its shape differs;
    no matching tensor at all, or another mismatched shape, raises a ValueError."""
    own = model.state_dict()
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from a DDP wrapper
    if "fc6.weight" in own and "classifier.0.weight" in state:
        state = vgg_fc_to_largefov(state, own)
    prefix = _best_prefix(own, state)
    head = getattr(model, "head_key", None)
    loaded, skipped, mismatched, unused = {}, {}, [], []
    for key, tensor in state.items():
        name = prefix + key
        if name not in own:
            unused.append(key)
        elif tensor.shape == own[name].shape:
            loaded[name] = tensor
        elif head and name.startswith(head + "."):
            skipped[name] = f"{name} {tuple(tensor.shape)} -> {tuple(own[name].shape)}"
        else:
            mismatched.append(f"{name} is {tuple(tensor.shape)} in the file, {tuple(own[name].shape)} here")
    kind = type(model).__name__
    if mismatched:
        raise ValueError(
            f"{source} does not fit this {kind} (weights of another backbone or width?): "
            f"{_brief(mismatched, 2, sep='; ')}; give weights saved from the same backbone"
        )
    if not loaded:
        raise ValueError(
            f"no tensor of {source} matches this {kind} (its keys look like {_brief(list(state), 3)}, "
            f"the model's like {_brief(list(own), 3)}); are these weights of another backbone?"
        )
    model.load_state_dict(loaded, strict=False)
    missing = [k for k in own if k not in loaded and k not in skipped]
    under = f" (the file's keys under {prefix!r})" if prefix else ""
    log.info("pretrained %s: loaded %d of %d tensors%s", source, len(loaded), len(own), under)
    if skipped:
        log.info("skipped the output layer (another class count): %s", _brief(list(skipped.values())))
    if unused:
        log.info("%d tensors of the file are not in the model: %s", len(unused), _brief(unused))
    if missing:
        # e.g. torchvision's VGG-16 classifier has Linear fc6/fc7 layers, not LargeFOV's conv ones
        log.info("%d tensors keep their random initialisation: %s", len(missing), _brief(missing))


def vgg_fc_to_largefov(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """torchvision's VGG-16 fully connected layers -> DeepLab-LargeFOV's fc6 / fc7, by decimation.

    DeepLab-LargeFOV (Chen et al., ICLR 2015) initializes its 3x3 dilated fc6 and 1x1 fc7 (1,024
    channels each) from VGG-16's fc6 (4096 x 512x7x7) and fc7 (4096 x 4096) by subsampling
    (decimation). This reconstruction keeps every 4th output channel (and, for fc7, every 4th input
    channel, matching fc6's kept outputs) and, for fc6, the kernel taps at rows and columns 0, 3
    and 6 of the 7x7 grid. VGG's own classifier (classifier.6) is never taken."""
    w6, w7 = state["classifier.0.weight"], state.get("classifier.3.weight")
    fc6, fc7 = own["fc6.weight"], own["fc7.weight"]  # (C6, 512, 3, 3), (C7, C6, 1, 1)
    if w6.shape != (4096, 512 * 7 * 7) or w7 is None or w7.shape != (4096, 4096):
        return state  # not VGG-16's classifier: load_state reports what does not fit
    step6, step7 = 4096 // fc6.shape[0], 4096 // fc7.shape[0]
    out = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    out["fc6.weight"] = w6.view(4096, 512, 7, 7)[::step6, :, ::3, ::3].contiguous()
    out["fc6.bias"] = state["classifier.0.bias"][::step6].contiguous()
    out["fc7.weight"] = w7[::step7, ::step6][:, :, None, None].contiguous()
    out["fc7.bias"] = state["classifier.3.bias"][::step7].contiguous()
    log.info("fc6/fc7 from VGG-16's fully connected layers by decimation (DeepLab-LargeFOV's init)")
    return out


def _best_prefix(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """The module path under which most of the file's tensors fit the model's by name and shape
    (then by name alone; "" first on ties): "net.backbone." for a torchvision ResNet-50 state
    dict loaded into DeepLabV3ResNet50."""
    prefixes = [""] + sorted({k.rsplit(".", i)[0] + "." for k in own for i in range(1, k.count(".") + 1)})

    def fit(p: str) -> tuple[int, int]:
        named = [k for k in state if p + k in own]
        return sum(own[p + k].shape == state[k].shape for k in named), len(named)

    return max(prefixes, key=fit)


def _brief(items: list[str], n: int = 4, sep: str = ", ") -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return sep.join(items[:n]) + more
