"""torch.hub entry point: `torch.hub.load("path/to/c3seg", "c3seg", source="local", path=RUN_OR_FILE)`.

`path` is a run folder (with `method`) or a file written by `c3seg export`; returns a
`c3seg.inference.api.Segmenter` (`.predict(image)`, `.predict_batch(images)`, `.foreground(image)`, `.classes`).
"""

dependencies = ["torch", "torchvision", "numpy", "safetensors"]


def c3seg(path: str, method: str = "pnet", device: str = "cpu"):  # noqa: ANN201 (torch.hub reads this)
    from c3seg.inference.api import load

    return load(path, method=method, device=device)
