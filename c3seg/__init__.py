"""c3seg: cross-category semi-supervised semantic segmentation (Xiao et al., AAAI 2018)."""

__version__ = "0.1.0"
