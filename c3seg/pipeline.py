"""`c3seg run`: the stages of the paper in order, each reading and writing the run folder.

Before a stage runs, its record (c3seg.engine.records) is compared with the settings and upstream outputs
it would be made from now: up to date -> skipped; started with the same ones -> the stage's own
function resumes its partial outputs (it decides what "complete" means: a final checkpoint, every
label file); anything changed -> its outputs are removed and made anew, and so, in turn, is
everything downstream whose inputs that changed.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from c3seg.config import Config, save_config
from c3seg.data.load import load_dataset
from c3seg.data.types import SegData
from c3seg.engine import distributed as dist
from c3seg.engine import records
from c3seg.engine.run import Run
from c3seg.io import read_json, remove_temporaries, write_json
from c3seg.methods import METHODS, REPORT_ORDER, STAGE_NAMES
from c3seg.splits import SplitSet, load_split, read_split_file
from c3seg.stages.evaluate import evaluate_all
from c3seg.stages.make_labels import make_labels
from c3seg.stages.pretrain import pretrain
from c3seg.stages.self_train import self_train
from c3seg.stages.train_affinity import train_affinity
from c3seg.stages.train_cam import train_cam
from c3seg.stages.train_lnet import train_lnet
from c3seg.stages.train_pnet import train_pnet
from c3seg.stages.train_seg import train_seg_methods

log = logging.getLogger(__name__)

# stage name -> f(cfg, run, data, split) -> Path, in pipeline order (names: c3seg.methods.STAGE_NAMES)
STAGES: dict[str, Callable[[Config, Run, SegData, SplitSet], Path]] = {
    "pretrain": pretrain,  # ImageNet's role: only where a net has pretrained=pretrain
    "train-lnet": train_lnet,  # Eq. 1
    "train-affinity": train_affinity,  # beyond the paper (RETAB / AffinityNet): affinity.enabled
    "train-cam": train_cam,  # Zhou et al. 2016
    "make-labels": make_labels,  # Eq. 2
    "self-train": partial(self_train, make_labels=make_labels),  # beyond the paper: selftrain.rounds > 0
    "train-seg": train_seg_methods,  # DeepLab on strong masks + L_w
    "train-pnet": train_pnet,  # Eq. 3-5
    "evaluate": evaluate_all,  # Table 2
}
assert tuple(STAGES) == STAGE_NAMES
# stages that read the pseudo labels train-seg trains on: self-training's last round's when it runs
FINAL_LABEL_READERS = ("train-seg", "train-pnet", "evaluate")


def stage_fn(name: str) -> Callable[[Config, Run, SegData, SplitSet], Path]:
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    return STAGES[name]


def parse_stages(text: str) -> list[str]:
    """'all', or a comma list like 'train-lnet,make-labels', run in pipeline order."""
    if text in ("all", ""):
        return list(STAGES)
    names = [s.strip() for s in text.split(",") if s.strip()]
    for n in names:
        stage_fn(n)
    return [s for s in STAGES if s in names]


def needed(stage: str, cfg: Config) -> bool:
    """Whether a stage is needed: pseudo labels only for methods trained on them; the pretrain
    stage only for a needed network with pretrained=pretrain."""
    from c3seg.engine.training import PRETRAIN

    if stage == "pretrain":
        users = {
            "train-lnet": cfg.lnet,
            "train-affinity": cfg.affinity,
            "train-cam": cfg.cam,
            "train-seg": cfg.seg,
        }
        return any(tc.pretrained == PRETRAIN and needed(s, cfg) for s, tc in users.items())

    sources = {METHODS[m][1] for m in cfg.methods if m in METHODS and METHODS[m][1]}
    if "pnet" in cfg.methods:
        sources.add("diffusion")
    if stage in ("train-lnet", "train-cam", "make-labels"):
        return bool(sources)
    if stage == "train-affinity":
        return bool(sources) and cfg.affinity.enabled
    if stage == "self-train":
        return bool(sources) and cfg.selftrain.rounds > 0
    if stage == "train-pnet":
        return "pnet" in cfg.methods
    return True


def setup(cfg: Config, run: Run) -> None:
    dist.init()
    run.root.mkdir(parents=True, exist_ok=True)
    if dist.is_main():
        save_config(cfg, run.config)


def check_settings(cfg: Config) -> None:
    """Fail before anything is written (the run folder, its lock, config.yaml) when a setting
    cannot work: an unknown method, a device this machine lacks, a malformed split file."""
    check_methods(cfg)
    dist.check_device(cfg.device, "device=cpu")
    read_split_file(cfg.data.split)


def check_methods(cfg: Config) -> None:
    """Fail before any work when cfg.methods names a method that no stage trains, or when the
    settings cannot work together."""
    unknown = [m for m in cfg.methods if m not in REPORT_ORDER]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r} in methods; choose from {', '.join(REPORT_ORDER)}")
    unknown = [m for m in cfg.evaluate.crf_methods if m not in REPORT_ORDER]
    if unknown:
        raise ValueError(
            f"unknown method {unknown[0]!r} in evaluate.crf_methods; choose from {', '.join(REPORT_ORDER)}"
        )
    if needed("pretrain", cfg) and cfg.pretrain.corpus == "shapes" and cfg.data.dataset != "benchmark":
        raise ValueError(
            "pretrained=pretrain with pretrain.corpus=shapes trains on the built-in benchmark's generated "
            f"corpus, which says nothing about {cfg.data.dataset}: give pretrain.corpus=imagefolder:PATH "
            "(an ImageNet copy, or any folder of photos in PATH/train/<class>/*.jpg)"
        )
    if cfg.evaluate.crf_methods and cfg.evaluate.crf == "exact":
        from c3seg.inference.crf import exact_crf_module

        exact_crf_module()  # fails now, not after hours of training, when pydensecrf2 is missing


@contextmanager
def run_log(run: Run) -> Iterator[None]:
    """Append everything logged while the block runs to RUN/run.log (main process only)."""
    if not dist.is_main():
        yield
        return
    run.root.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run.root / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level != logging.NOTSET else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def run_stages(cfg: Config, run: Run, stages: Sequence[str], force: bool = False) -> None:
    """Run `stages` in order on `run`: each unit (c3seg.engine.records) is skipped when its record matches
    the settings and upstream outputs it would be made from now, resumed when it started with
    them, and made anew (after removing its outputs) when they changed. One process at a time:
    the run folder is locked while it works. Finished outputs that changed settings would discard
    are kept, and the call refused, unless `force`."""
    check_settings(cfg)
    with run_lock(run), run_log(run):
        data = load_dataset(cfg.data)
        split = load_split(cfg.data.split, data.classes)
        if not force:
            refuse_discarding(cfg, run, stages, records.listing_fingerprint(data, split))
        setup(cfg, run)
        log.info(
            "dataset %s: %d train / %d val images, %d classes; split %s: %d strong, %d weak",
            data.name,
            len(data.train),
            len(data.val),
            data.num_classes,
            split.name,
            len(split.strong),
            len(split.weak),
        )
        listing = records.listing_fingerprint(data, split)
        for name in stages:
            if not needed(name, cfg):
                if name == "pretrain":
                    log.info("== pretrain: no network to train has pretrained=pretrain, skipped ==")
                elif name == "train-affinity" and not cfg.affinity.enabled:
                    log.info("== train-affinity: affinity.enabled=false, skipped ==")
                else:
                    log.info("== %s: not needed by methods %s, skipped ==", name, ", ".join(cfg.methods))
                continue
            log.info("== %s ==", name)
            if name == "evaluate":  # no record: it re-checks each method's checkpoint itself
                t0 = time.perf_counter()
                stage_fn(name)(cfg, stage_run(name, cfg, run), data, split)
                record_seconds(run, name, time.perf_counter() - t0)
            else:
                for unit in records.units(name, cfg):
                    run_unit(unit, cfg, run, data, split, listing)
            dist.barrier()


def refuse_discarding(cfg: Config, run: Run, stages: Sequence[str], listing: str) -> None:
    """Raise, before anything is touched, when these settings would discard finished outputs of
    the requested stages (their recorded settings differ): changing a setting of a run is a choice
    to make explicitly (--force), not the effect of a forgotten override or --config."""
    found = []
    for name in stages:
        if name == "evaluate" or not needed(name, cfg):
            continue
        for unit in records.units(name, cfg):
            record = records.read_stamp(run, unit)
            if record is None or record.get("status") != "done":
                continue
            why = records.stale_reason(
                {**record, "upstream": {}}, {"key": records.expected_key(unit, cfg, listing), "upstream": {}}
            )
            if why:
                found.append(f"{unit} ({why})")
    if found:
        raise ValueError(
            f"these settings differ from those {run.root}'s finished outputs were made with, so they "
            f"would be discarded and made again: {'; '.join(found)} (and what depends on them). "
            "Add --force to do that, or run with the run's own settings (its config.yaml is the "
            "default when --config is not given)"
        )


def unit_fn(unit: str) -> Callable:
    """f(cfg, run, data, split) that makes a unit's outputs (or resumes them, or skips when done)."""
    stage, _, method = unit.partition("/")
    if stage == "train-seg" and method:
        from c3seg.stages.train_seg import train_seg

        return lambda cfg, run, data, split: train_seg(cfg, run, data, split, method)
    return stage_fn(stage)


def stage_run(stage: str, cfg: Config, run: Run) -> Run:
    """The run as a stage sees it: the stages after self-training read its last round's labels."""
    return run.at_round(cfg.selftrain.rounds) if stage in FINAL_LABEL_READERS else run


def run_unit(unit: str, cfg: Config, run: Run, data: SegData, split: SplitSet, listing: str) -> None:
    """Make one unit unless its record says it is done with these settings, inputs and outputs."""
    want = records.expected(unit, cfg, run, listing)
    record = records.read_stamp(run, unit)
    why: str | None = "outputs without a record"
    if record is not None:
        why = records.stale_reason(record, want)
        if why is None and record.get("status") == "done":
            why = records.outputs_reason(unit, run, cfg, record)
            if why is None:
                log.info("%s: up to date", unit)
                return
    if why:
        if any(p.exists() for p in run.unit_outputs(unit)):
            log.info("%s: stale (%s); making it anew", unit, why)
        if dist.is_main():
            records.clear(unit, run)
        dist.barrier()
    else:
        log.info("%s: resuming", unit)
    if dist.is_main():
        records.write_stamp(run, unit, want, "running")
    t0 = time.perf_counter()
    stage = unit.partition("/")[0]
    unit_fn(unit)(cfg, stage_run(stage, cfg, run), data, split)
    dist.barrier()
    record_seconds(run, unit, time.perf_counter() - t0, resumed=not why)
    if dist.is_main():
        records.write_stamp(run, unit, want, "done", records.result_of(unit, run, cfg))


def record_seconds(run: Run, unit: str, seconds: float, resumed: bool = False) -> None:
    """Note in RUN/timings.json how long a unit took (its wall time in this process; a resumed
    unit is marked, since its time leaves out the part done before). Units skipped as up to date
    keep the time of their making; evaluate's is that of its last call (it re-checks each time)."""
    if not dist.is_main():
        return
    times = read_json(run.timings) if run.timings.exists() else {}
    times[unit] = {"seconds": round(seconds, 2), **({"resumed": True} if resumed else {})}
    write_json(run.timings, times)


def unit_seconds(run: Run) -> dict[str, float]:
    """unit -> wall seconds of its last making, from RUN/timings.json ({} when absent)."""
    if not run.timings.exists():
        return {}
    return {u: float(t["seconds"]) for u, t in read_json(run.timings).items()}


@contextmanager
def run_lock(run: Run) -> Iterator[None]:
    """Hold RUN/.lock (main process) so that a second c3seg on the same folder is refused, then
    remove the temporary files of c3seg's own interrupted writes (c3seg.io.remove_temporaries:
    only names c3seg.io.atomic_path makes, of processes that are gone)."""
    if not dist.is_main_env():
        yield
        return
    try:
        run.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(run.lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ValueError(
            f"cannot write in the run folder {run.root} ({e.strerror}); choose a writable --out"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = Path(run.lock).read_text().strip() or "?"
            raise ValueError(
                f"another c3seg process (pid {owner}) is working on {run.root}; wait for it to "
                "finish, or stop it, before running stages there"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        for tmp in remove_temporaries(run.root):
            log.info("removed %s, left by an interrupted write", tmp)
        yield
    finally:
        os.close(fd)


def status(cfg: Config, run: Run) -> list[tuple[str, str, str]]:
    """(unit, state, detail) of every stage for `c3seg status`: done, stale (why), partial,
    missing, or not needed by cfg; evaluate is done when every trained method has a report."""
    data = load_dataset(cfg.data)
    split = load_split(cfg.data.split, data.classes)
    listing = records.listing_fingerprint(data, split)
    rows = []
    seconds = unit_seconds(run)

    def took(unit: str) -> str:
        return f"({_duration(seconds[unit])})" if unit in seconds else ""

    for name in STAGES:
        if not needed(name, cfg):
            why = {
                "pretrain": "no network has pretrained=pretrain",
                "train-affinity": "affinity.enabled=false",
                "self-train": "selftrain.rounds=0",
            }
            rows.append((name, "not needed", why.get(name, f"methods {', '.join(cfg.methods)}")))
            continue
        if name == "evaluate":
            state = "done" if run.report_json.exists() else "missing"
            rows.append((name, state, took(name) or "re-checks each method's checkpoint when run"))
            continue
        for unit in records.units(name, cfg):
            state, detail = records.unit_state(unit, cfg, run, listing)
            rows.append((unit, state, (detail or took(unit)) if state == "done" else detail))
    return rows


def _duration(seconds: float) -> str:
    return f"took {seconds:.0f} s" if seconds < 600 else f"took {seconds / 60:.1f} min"


def status_command(args: argparse.Namespace) -> int:
    """`c3seg status RUN`: each stage of a run folder as done / stale (why) / partial / missing,
    judged with the folder's config.yaml and any overrides given."""
    from c3seg.config import load_config

    run = Run(args.run)
    if not run.config.exists():
        raise FileNotFoundError(f"{run.config} does not exist: is {run.root} a c3seg run folder?")
    cfg = load_config(str(run.config), list(args.overrides))
    rows = status(cfg, run)
    width = max(len(u) for u, _, _ in rows)
    for unit, state, detail in rows:
        print(f"{unit:<{width}}  {state:<10}  {detail}".rstrip())
    return 1 if any(state in ("stale", "partial", "missing") for _, state, _ in rows) else 0
