"""`c3seg demo`: the built-in benchmark end to end — every stage of the paper and the Table 2
report, on a laptop's CPU in minutes. With `--seeds`, once per seed and a summary over them
(c3seg.headline)."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from c3seg.config import load_config
from c3seg.engine.run import Run
from c3seg.evaluation.report import mark_smoke_test
from c3seg.headline import SeedRuns, summarize, summary_md
from c3seg.io import read_json, write_json, write_text
from c3seg.pipeline import STAGES, run_stages

log = logging.getLogger(__name__)
SEED_KEYS = ("seed", "data.bench_seed")  # set per run by --seeds


def run_demo(
    quick: bool, overrides: Sequence[str], out: Path, force: bool = False, config: str | None = None
) -> Path:
    """Every stage into the run folder `out` (each skips when already done); its report.json.
    `config` replaces the benchmark config (tiny with `quick`). A quick run's report says at its
    top that it is a smoke test whose numbers mean nothing."""
    cfg = load_config(config or ("tiny" if quick else "benchmark"), list(overrides))
    run = Run(out)
    run_stages(cfg, run, list(STAGES), force=force)
    if quick:
        mark_smoke_test(run.report_md, run.report_json)
    return run.report_json


def demo_command(args: argparse.Namespace) -> int:
    if getattr(args, "seeds", None):
        return seeds_command(args)
    t0 = time.time()
    report = run_demo(args.quick, args.overrides, args.out, getattr(args, "force", False), args.config)
    run = Run(args.out)
    log.info("demo finished in %.1f min: %s and %s", (time.time() - t0) / 60, run.report_md, report)
    print(run.report_md.read_text())
    return 0


def seeds_command(args: argparse.Namespace) -> int:
    """One demo per seed k (data.bench_seed=k, seed=k) into OUT/seed-k, then OUT/summary.*.

    A seed whose report.json exists is not rerun, so an interrupted headline resumes."""
    clash = [o for o in args.overrides if o.split("=", 1)[0].strip() in SEED_KEYS]
    if clash:
        raise ValueError(
            f"--seeds sets {' and '.join(SEED_KEYS)} for each run; drop the override {clash[0]!r}"
        )
    layout = SeedRuns(args.out)
    reports = {}
    for k in args.seeds:
        out = layout.seed(k)
        report = Run(out).report_json
        if report.exists():
            log.info("seed %d: %s exists, not rerun", k, report)
        else:
            t0 = time.time()
            log.info("seed %d: demo into %s", k, out)
            run_demo(
                args.quick,
                [*args.overrides, f"data.bench_seed={k}", f"seed={k}"],
                out,
                getattr(args, "force", False),
                args.config,
            )
            log.info("seed %d finished in %.1f min", k, (time.time() - t0) / 60)
        reports[k] = read_json(report)
    summary = summarize(reports)
    write_json(layout.summary_json, summary)
    write_text(layout.summary_md, summary_md(summary))
    if args.quick:
        mark_smoke_test(layout.summary_md, layout.summary_json)
    log.info("headline over seeds %s: %s and %s", summary["seeds"], layout.summary_md, layout.summary_json)
    print(layout.summary_md.read_text())
    return 0
