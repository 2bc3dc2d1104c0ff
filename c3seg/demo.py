"""`c3seg demo`: the built-in benchmark end to end — every stage of the paper and the Table 2
report, on a laptop's CPU in minutes."""

from __future__ import annotations

import argparse
import logging
import time

from c3seg.config import load_config
from c3seg.pipeline import STAGES, run_stages
from c3seg.run import Run

log = logging.getLogger(__name__)


def demo_command(args: argparse.Namespace) -> int:
    cfg = load_config("tiny" if args.quick else "benchmark", list(args.overrides))
    run = Run(args.out)
    t0 = time.time()
    run_stages(cfg, run, list(STAGES))
    log.info("demo finished in %.1f min: %s and %s", (time.time() - t0) / 60, run.report_md, run.report_json)
    print(run.report_md.read_text())
    return 0
