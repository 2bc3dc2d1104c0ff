"""Kill `c3seg run` anywhere, resume it, and check that nothing was lost.

    python tools/kill_resume.py --out /tmp/kr --kills 12 -- --config tiny data.root=/tmp/kr-data

Runs the pipeline once uninterrupted (OUT/reference), then again in OUT/killed, SIGKILLing the
process at random moments: each kill waits for the next stage in turn to start (its "== stage =="
log line), then a random delay (within the first quarter of the stage's reference time the first
time a stage is aimed at), so the kills spread over every stage; after each kill the run is
started again. At the end it checks that the killed run finished, that every file is complete
and readable (checkpoints load, label maps and images decode, JSON parses, no temporary files
left), and that report.json equals the reference's (on CPU with a fixed seed: bit-exact mIoU).
Exit status 0 when all holds; the findings are printed either way.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

STAGE_LINES = ["train-lnet", "train-cam", "make-labels", "train-seg", "train-pnet", "evaluate"]


def command(out: Path, run_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "c3seg.cli", "run", "--out", str(out), *run_args]


def env() -> dict[str, str]:
    e = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    root = str(Path(__file__).resolve().parents[1])
    e["PYTHONPATH"] = root + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def run_once(out: Path, run_args: list[str], log: Path) -> int:
    with open(log, "ab") as f:
        return subprocess.run(command(out, run_args), stdout=f, stderr=f, env=env()).returncode


def run_timed(out: Path, run_args: list[str], log: Path) -> tuple[int, dict[str, float]]:
    """Run to the end, noting when each stage's log line appears: (rc, stage -> seconds it took)."""
    start = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as f:
        proc = subprocess.Popen(command(out, run_args), stdout=f, stderr=f, env=env())
    seen: dict[str, float] = {}
    while True:
        done = proc.poll() is not None
        with open(log, "rb") as f:
            f.seek(start)
            for name in re.findall(rb"== ([a-z-]+) ==", f.read()):
                seen.setdefault(name.decode(), time.monotonic())
        if done:
            break
        time.sleep(0.02)
    end = time.monotonic()
    order = sorted(seen, key=seen.get)  # type: ignore[arg-type]
    took = {a: (seen[b] if b else end) - seen[a] for a, b in zip(order, [*order[1:], None], strict=True)}
    return proc.returncode, took


def run_until_killed(out: Path, run_args: list[str], log: Path, stage: str, delay: float) -> str:
    """Start the run, kill it `delay` s after stage `stage` starts; 'killed', or 'finished' (rc)."""
    start = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as f:
        proc = subprocess.Popen(command(out, run_args), stdout=f, stderr=f, env=env())
    marker = f"== {stage}".encode()
    seen_at = None
    while proc.poll() is None:
        if seen_at is None:
            with open(log, "rb") as f:
                f.seek(start)
                if marker in f.read():
                    seen_at = time.monotonic()
        elif time.monotonic() - seen_at >= delay:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with open(log, "rb") as f:
                f.seek(start)
                stages = re.findall(rb"== ([a-z-]+) ==", f.read())
            where = stages[-1].decode() if stages else "setup"
            return f"killed in {where} ({delay:.2f} s after {stage} started)"
        time.sleep(0.02)
    return f"finished before the kill in {stage} (rc {proc.returncode})"


def check_files(root: Path) -> list[str]:
    """Problems with the files of a run folder: unreadable checkpoints, images, JSON; temp files."""
    from PIL import Image

    from c3seg.io import TMP_MARK, load_checkpoint

    problems = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == ".lock":
            continue
        try:
            if TMP_MARK in p.name:
                problems.append(f"{p}: temporary file left behind")
            elif p.suffix == ".pt":
                load_checkpoint(p)
            elif p.suffix == ".png":
                with Image.open(p) as im:
                    im.load()
            elif p.suffix == ".json":
                json.loads(p.read_text())
            elif p.suffix == ".jsonl":
                for line in p.read_text().splitlines():
                    json.loads(line)
        except Exception as e:  # noqa: BLE001 - every failure is a finding
            problems.append(f"{p}: {type(e).__name__}: {e}")
    return problems


def compare_reports(a: Path, b: Path) -> list[str]:
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    diffs = []
    for m in sorted(set(ra["methods"]) | set(rb["methods"])):
        x, y = ra["methods"].get(m), rb["methods"].get(m)
        if x is None or y is None:
            diffs.append(f"{m}: only in {'reference' if y is None else 'killed run'}")
        elif x["iou"] != y["iou"]:
            diffs.append(f"{m}: mIoU {x['miou']} (reference) vs {y['miou']} (killed and resumed)")
    return diffs


def kill_and_resume(
    out: Path, run_args: list[str], kills: int, seed: int = 0, max_delay: float = 2.0
) -> dict:
    """The whole check; returns {"kills": [...], "problems": [...], "report_diffs": [...]}."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    ref, killed, log = out / "reference", out / "killed", out / "log.txt"
    took: dict[str, float] = {}
    if not (ref / "report.json").exists():
        rc, took = run_timed(ref, run_args, log)
        if rc != 0:
            raise RuntimeError(f"the reference run failed (rc {rc}); see {log}")
    events = []
    for i in range(kills):
        stage = STAGE_LINES[i % len(STAGE_LINES)]
        # within the stage as long as it took in the reference run, at most max_delay. The first
        # kill aimed at a stage is its only chance (once the stage ends, a resumed run skips it),
        # so it lands in the stage's first quarter: a fast stage on a busy machine can take well
        # under its reference time, and a later kill can no longer reach it.
        share = 0.25 if i < len(STAGE_LINES) else 0.8
        longest = min(max_delay, share * took[stage]) if stage in took else max_delay
        delay = rng.uniform(0, longest)
        for _ in range(3):  # a stage faster than in the reference: kill it again, sooner
            events.append(run_until_killed(killed, run_args, log, stage, delay))
            if not events[-1].startswith("killed in") or events[-1].split()[2] == stage:
                break
            delay /= 4
    rc = run_once(killed, run_args, log)
    problems = [] if rc == 0 else [f"the final resume failed (rc {rc}); see {log}"]
    problems += check_files(killed)
    diffs = compare_reports(ref / "report.json", killed / "report.json") if rc == 0 else []
    return {"kills": events, "problems": problems, "report_diffs": diffs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--kills", type=int, default=12)
    p.add_argument("--seed", type=int, default=0, help="of the kill delays")
    p.add_argument("--max-delay", type=float, default=2.0, help="seconds after a stage starts")
    p.add_argument("run_args", nargs="*", help="after --: arguments of 'c3seg run' (not --out)")
    a = p.parse_args()
    result = kill_and_resume(a.out, a.run_args, a.kills, a.seed, a.max_delay)
    print(json.dumps(result, indent=2))
    return 0 if not result["problems"] and not result["report_diffs"] else 1


if __name__ == "__main__":
    sys.exit(main())
