"""c3seg: cross-category semi-supervised semantic segmentation (Xiao et al., AAAI 2018)."""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "Segmenter"]


def __getattr__(name: str):  # lazy: `import c3seg` stays light; c3seg.load imports torch
    if name in ("load", "Segmenter", "ModelInfo"):
        from c3seg.inference import api

        return getattr(api, name)
    raise AttributeError(f"module 'c3seg' has no attribute {name!r}")
