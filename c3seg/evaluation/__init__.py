"""Scoring and reporting: confusion-matrix mIoU, scoring a network on a split, the Table 2 report, pictures."""
