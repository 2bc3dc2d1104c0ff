"""The headline over several seeds: one demo run per seed, then means and spreads of the reports.

OUT/
  seed-<k>/                    a complete run folder (c3seg.engine.run) with data.bench_seed=k and seed=k
  summary.json, summary.md     per method: mean, min, max and sample std over the seeds

Seed 0 is the development draw (settings were tuned on it): a count N means seeds 1..N, and 0
enters only when listed explicitly, marked "development seed" in the summary.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEVELOPMENT_SEED = 0
# report.json keys summarized per method, with their summary.md column headers
METRICS = {
    "miou": "mIoU",
    "miou_strong": "strong",
    "miou_weak": "weak",
    "percent_of_fully_supervised": "% of full",
    "percent_of_fully_supervised_weak": "weak % of full",
}
PSEUDO_METRICS = {"miou": "mIoU (weak images)", "miou_weak": "weak-class mIoU"}
# paired, per seed, in weak-category mIoU points: the P-Net's effect and the method's margin over
# the CAM baseline
DIFFERENCES = {"pnet - lnet": ("pnet", "lnet"), "lnet - cam-threshold": ("lnet", "cam-threshold")}


@dataclass(frozen=True)
class SeedRuns:
    """Where a multi-seed headline keeps its runs and its summary."""

    root: Path

    def seed(self, k: int) -> Path:
        return Path(self.root) / f"seed-{k}"

    @property
    def summary_json(self) -> Path:
        return Path(self.root) / "summary.json"

    @property
    def summary_md(self) -> Path:
        return Path(self.root) / "summary.md"


def parse_seeds(text: str) -> list[int]:
    """'3' -> [1, 2, 3] (a count; seed 0 is development data); '1,2,5' or '5,' -> those seeds."""
    usage = f"--seeds {text!r}: expected a count N (seeds 1..N) or distinct seeds >= 0 like 1,2,3"
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(usage) from None
    if not seeds:
        raise ValueError(usage)
    if "," not in text:
        if seeds[0] < 1:
            raise ValueError(f"--seeds {text}: a count must be at least 1 (seeds 1..N)")
        return list(range(1, seeds[0] + 1))
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(usage)
    return seeds


def stats(values: Sequence[float | None]) -> dict:
    """mean, min, max, sample std (None below two values) and n of the values that are not None."""
    xs = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not xs:
        return {"mean": None, "min": None, "max": None, "std": None, "n": 0}
    return {
        "mean": round(statistics.fmean(xs), 2),
        "min": round(min(xs), 2),
        "max": round(max(xs), 2),
        "std": round(statistics.stdev(xs), 2) if len(xs) > 1 else None,
        "n": len(xs),
    }


def _names(reports: dict[int, dict], section: str) -> list[str]:
    """Every row name of a report section, in the order it first appears."""
    names: dict[str, None] = {}
    for rep in reports.values():
        names.update(dict.fromkeys(rep.get(section) or {}))
    return list(names)


def summarize(reports: dict[int, dict]) -> dict:
    """Mean and spread over seeds of every method's scores and every pseudo-label source's quality.

    Args:
        reports: seed -> that seed's report.json (c3seg.evaluation.report.write_report).
    """
    seeds = sorted(reports)
    methods = {}
    for m in _names(reports, "methods"):
        rows = {k: reports[k]["methods"].get(m) for k in seeds}
        out: dict[str, Any] = {
            key: stats([r.get(key) if r else None for r in rows.values()]) for key in METRICS
        }
        out["seeds"] = [k for k, r in rows.items() if r]
        if m == "pnet":
            out["selected_epoch"] = {str(k): r.get("selected_epoch") for k, r in rows.items() if r}
            out["selection_score"] = {str(k): r.get("selection_score") for k, r in rows.items() if r}
        methods[m] = out
    pseudo: dict[str, dict[str, Any]] = {}
    for src in _names(reports, "pseudo_labels"):
        rows = {k: (reports[k].get("pseudo_labels") or {}).get(src) for k in seeds}
        pseudo[src] = {
            key: stats([r.get(key) if r else None for r in rows.values()]) for key in PSEUDO_METRICS
        }
        pseudo[src]["seeds"] = [k for k, r in rows.items() if r]
    first = reports[seeds[0]] if seeds else {}
    return {
        "differences": _differences(reports, seeds),
        "seeds": seeds,
        "development_seeds": [k for k in seeds if k == DEVELOPMENT_SEED],
        "dataset": first.get("dataset"),
        "split": first.get("split"),
        "methods": methods,
        "pseudo_labels": pseudo,
    }


def _differences(reports: dict[int, dict], seeds: list[int]) -> dict[str, dict[str, Any]]:
    """DIFFERENCES of weak mIoU, per seed where both methods ran, with their mean and spread."""
    out = {}
    for name, (a, b) in DIFFERENCES.items():
        per_seed = {}
        for k in seeds:
            rows = reports[k].get("methods") or {}
            wa, wb = ((rows.get(m) or {}).get("miou_weak") for m in (a, b))
            if wa is not None and wb is not None:
                per_seed[str(k)] = round(wa - wb, 2)
        if per_seed:
            out[name] = {**stats(list(per_seed.values())), "per_seed": per_seed}
    return out


def _cell(s: dict) -> str:
    if s["mean"] is None:
        return "–"
    spread = f" ± {s['std']:.1f}" if s["std"] is not None else ""
    return f"{s['mean']:.1f}{spread} ({s['min']:.1f}–{s['max']:.1f})"


def _seed_name(k: int) -> str:
    return f"{k} (development seed)" if k == DEVELOPMENT_SEED else str(k)


def summary_md(summary: dict) -> str:
    """summary.md: one table of methods, one of pseudo-label sources, the P-Net epoch per seed."""
    seeds = summary["seeds"]
    plural = "s" if len(seeds) != 1 else ""
    lines = [
        f"# c3seg headline over {len(seeds)} seed{plural}: {summary.get('dataset')}, split {summary.get('split')}",
        "",
        f"Seeds: {', '.join(_seed_name(k) for k in seeds)}. Each seed trains with its own seed and, "
        "on the built-in benchmark, draws its own benchmark (data.bench_seed); runs in seed-<k>/.",
        "Cells: mean ± sample std (min–max) over the seeds, IoU in percent. "
        "% of full: mIoU over the fully-supervised mIoU; weak % of full: weak mIoU over the "
        "fully-supervised weak mIoU.",
    ]
    if summary["development_seeds"]:
        lines.append("Seed 0 is the development draw the settings were tuned on; the means include it.")
    head = ["method", *METRICS.values()]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, row in summary["methods"].items():
        name = m if len(row["seeds"]) == len(seeds) else f"{m} (seeds {', '.join(map(str, row['seeds']))})"
        lines.append("| " + " | ".join([name] + [_cell(row[k]) for k in METRICS]) + " |")
    pnet = summary["methods"].get("pnet")
    if pnet:
        chosen = ", ".join(
            f"seed {k}: {e if e is not None else '?'}" for k, e in pnet["selected_epoch"].items()
        )
        lines += ["", f"pnet fine-tuning epoch chosen on the hold-out (0 = the lnet model): {chosen}."]
    if summary.get("differences"):
        lines += ["", "## Paired differences in weak mIoU (points)", ""]
        lines += ["| difference | mean ± std (min–max) | per seed |", "|---|---|---|"]
        for name, row in summary["differences"].items():
            per = ", ".join(f"{k}: {v:+.1f}" for k, v in row["per_seed"].items())
            lines.append(f"| {name} | {_cell(row)} | {per} |")
    if summary["pseudo_labels"]:
        head = ["label source", *PSEUDO_METRICS.values()]
        lines += ["", "## Pseudo-label quality on weak training images (evaluation only)", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for src, row in summary["pseudo_labels"].items():
            lines.append("| " + " | ".join([src] + [_cell(row[k]) for k in PSEUDO_METRICS]) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["SeedRuns", "parse_seeds", "stats", "summarize", "summary_md"]
