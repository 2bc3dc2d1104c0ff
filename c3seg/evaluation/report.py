"""report.json and report.md: the paper's Table 2 for one run.

IoU is in percent (0-100) as the paper prints it. `percent_of_fully_supervised` is the method's
mIoU over the `fully-supervised` row's mIoU (the paper's headline metric, column "% of full");
`percent_of_fully_supervised_weak` is the same ratio over the weak categories alone (column
"weak % of full": weak mIoU over the fully-supervised weak mIoU), where the categories without
masks show how much the transfer recovers. The `pnet` row also names the fine-tuning epoch that
train-pnet chose on the hold-out (`selected_epoch`, 0 = the lnet model unchanged) and its score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from c3seg.data.types import SegData
from c3seg.engine.run import Run
from c3seg.evaluation.metrics import mean_iou
from c3seg.evaluation.signals import signals_md
from c3seg.io import read_json, write_json, write_text
from c3seg.splits import SplitSet

REFERENCE = "fully-supervised"
# under the title of a `c3seg demo --quick` report (and its summary over seeds)
SMOKE_TEST_NOTE = (
    "> **Smoke test: these numbers mean nothing.** The quick configuration (`c3seg demo --quick`) "
    "trains each network for about one epoch on a tiny benchmark only to show that every stage "
    'runs; IoUs of 0.0 and odd "% of full" values are expected. Run `c3seg demo` (without '
    "--quick) for the benchmark's results."
)


def _pct(x: float) -> float | None:
    return None if math.isnan(x) else round(100.0 * x, 2)


def method_row(iou: np.ndarray, classes: Sequence[str], weak_ids: Sequence[int]) -> dict:
    """Scores of one method from per-class IoU in [0, 1] (NaN = class absent everywhere).

    Strong mIoU is over the strong categories, weak mIoU over the weak ones; background counts
    in `miou` (all) only, as in the paper's mIoU column."""
    weak = set(weak_ids)
    strong_ids = [c for c in range(1, len(classes)) if c not in weak]
    return {
        "miou": _pct(mean_iou(iou)),
        "miou_strong": _pct(mean_iou(iou, strong_ids)) if strong_ids else None,
        "miou_weak": _pct(mean_iou(iou, sorted(weak))) if weak else None,
        "iou": {name: _pct(float(v)) for name, v in zip(classes, iou)},
    }


def add_reference(rows: dict[str, dict]) -> None:
    ref = rows.get(REFERENCE)
    for row in rows.values():
        for key, ref_key in (
            ("percent_of_fully_supervised", "miou"),
            ("percent_of_fully_supervised_weak", "miou_weak"),
        ):
            if ref and ref.get(ref_key) and row.get(ref_key) is not None:
                row[key] = round(100.0 * row[ref_key] / ref[ref_key], 1)
            else:
                row[key] = None


def fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def table_md(rows: dict[str, dict], classes: Sequence[str], strong: set[str]) -> str:
    """A row per method, a column per class (strong columns marked *), mIoU last."""
    head = (
        ["method"]
        + [f"{c}*" if c in strong else c for c in classes]
        + ["mIoU", "strong", "weak", "% of full", "weak % of full"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [name] + [fmt_pct(r["iou"].get(c)) for c in classes]
        cells += [
            fmt_pct(r["miou"]),
            fmt_pct(r["miou_strong"]),
            fmt_pct(r["miou_weak"]),
            fmt_pct(r.get("percent_of_fully_supervised")),
            fmt_pct(r.get("percent_of_fully_supervised_weak")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def selection_md(rows: dict[str, dict]) -> str:
    """The P-Net checkpoint choice, one line ('' when the pnet row has none, e.g. an old checkpoint)."""
    row = rows.get("pnet") or {}
    epoch = row.get("selected_epoch")
    if epoch is None:
        return ""
    of = f" of {row['finetune_epochs']}" if row.get("finetune_epochs") is not None else ""
    score = row.get("selection_score")
    held = f", hold-out score {score:.1f}" if score is not None else ""
    if score is not None and row.get("selection"):
        held += f" (pnet.select={row['selection']})"
    return f"pnet: fine-tuning epoch {epoch}{of} chosen (epoch 0 = the lnet model unchanged){held}."


def crf_md(rows: dict[str, dict]) -> str:
    """One line on the "+crf" rows: which CRF and its time an image ('' without such rows)."""
    parts = [
        f"{name} {row['crf_ms_per_image']:.0f} ms" if row.get("crf_ms_per_image") is not None else name
        for name, row in rows.items()
        if row.get("crf")
    ]
    if not parts:
        return ""
    kind = next(row["crf"] for row in rows.values() if row.get("crf"))
    return f"+crf rows: the same network's predictions refined by the {kind} dense CRF (c3seg.inference.crf); time an image on the evaluating machine: {', '.join(parts)}."


def pseudo_md(pseudo: dict[str, dict]) -> str:
    lines = ["| label source | mIoU (weak images) | weak-class mIoU |", "|---|---|---|"]
    for name, q in pseudo.items():
        if q.get("images") == 0:
            lines.append(f"| {name} | {NOT_SCORED} | {NOT_SCORED} |")
        else:
            lines.append(f"| {name} | {fmt_pct(q.get('miou'))} | {fmt_pct(q.get('miou_weak'))} |")
    return "\n".join(lines)


# a label source's quality where no weak training image has a mask (a folder dataset's weak images)
NOT_SCORED = "not scored: weak images have no masks"


def mark_smoke_test(md: Path, js: Path) -> None:
    """Say under the title of report.md (or summary.md) that its numbers come from the quick
    configuration and mean nothing, and set "smoke_test": true in its JSON; once."""
    lines = md.read_text().splitlines()
    if SMOKE_TEST_NOTE not in lines:
        write_text(md, "\n".join([*lines[:1], "", SMOKE_TEST_NOTE, *lines[1:]]) + "\n")
    report = read_json(js)
    if not report.get("smoke_test"):
        note = SMOKE_TEST_NOTE.removeprefix("> ").replace("**", "")
        write_json(js, {"smoke_test": True, "smoke_test_note": note, **report})


def write_report(
    run: Run,
    data: SegData,
    split: SplitSet,
    rows: dict[str, dict],
    pseudo: dict[str, dict] | None = None,
    signals: dict[str, Any] | None = None,
) -> None:
    """report.json and report.md; `signals`: c3seg.evaluation.signals.legal_signals."""
    add_reference(rows)
    pseudo = pseudo or {}
    signals = signals or {}
    report = {
        "dataset": data.name,
        "split": split.name,
        "classes": list(data.classes),
        "strong": list(split.strong),
        "weak": list(split.weak),
        "methods": rows,
        "pseudo_labels": pseudo,
        "signals": signals,
    }
    write_json(run.report_json, report)
    md = [
        f"# c3seg report: {data.name}, split {split.name}",
        "",
        f"Segmentation on val, IoU in percent. Strong categories are marked *: {', '.join(split.strong) or 'none'}.",
        f"Weak categories ({len(split.weak)}): {', '.join(split.weak)}.",
        "strong / weak: mIoU over the strong / weak categories (background in mIoU only).",
        f"% of full: mIoU over the {REFERENCE} mIoU, all categories. "
        f"weak % of full: weak mIoU over the {REFERENCE} weak mIoU, weak categories only.",
        "",
        table_md(rows, data.classes, set(split.strong)),
    ]
    if selection_md(rows):
        md += ["", selection_md(rows)]
    if crf_md(rows):
        md += ["", crf_md(rows)]
    if signals_md(signals):
        md += ["", "## What choices may look at: strong images and image labels", "", signals_md(signals)]
    if pseudo:
        md += ["", "## Pseudo-label quality on weak training images (evaluation only)", "", pseudo_md(pseudo)]
    pictures = [
        ("fig3.png", "Fig. 3: weak training images: image, M, CAMs, pseudo label, ground truth"),
        ("fig6.png", "Fig. 6: val images showing weak categories: image, each method, ground truth"),
        ("iou.png", "IoU per class, strong and weak"),
        ("curves.png", "Training curves of every stage"),
    ]
    shown = [(f, t) for f, t in pictures if (run.figures / f).exists()]
    if shown:
        md += ["", "## Pictures", ""]
        md += [f"![{t}](figures/{f})\n\n{t} ([figures/{f}](figures/{f}))\n" for f, t in shown]
    write_text(run.report_md, "\n".join(md) + "\n")


__all__ = ["method_row", "write_report", "table_md", "selection_md", "mark_smoke_test"]
