"""What each output was made from: the records that make stages recompute when, and only when,
something they depend on changed.

A *unit* is what one record covers: a stage, except train-seg, which has one unit per method
(`train-seg/lnet`, ...). Its record (`Run.stamp(unit)`, JSON) holds

  key       the settings that affect its outputs (never workers, devices or batch sizes of
            inference), the dataset listing's fingerprint and the split's classes;
  upstream  the results of the units it reads (an L-Net checkpoint's hash, a label source's hash);
  result    the hash of what it wrote (a checkpoint, a label folder per source);
  status    "running" from its start, "done" once its outputs are complete.

Before a unit runs, its expected key and upstream are compared with its record: equal and done
-> up to date (skipped); equal and running -> the stage resumes its partial outputs; different
-> stale: its outputs are removed (`clear`) and it is made again, which changes its result, so
every unit downstream becomes stale in turn. A unit with outputs but no record (a run folder of
an older c3seg) keeps its outputs and gets a record as they are.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from c3seg.config import Config
from c3seg.data.types import SegData
from c3seg.engine.run import Run
from c3seg.io import read_json, write_json
from c3seg.methods import METHODS, PNET_SOURCE, PNET_START, label_source
from c3seg.splits import SplitSet

PRETRAIN = "pretrain"
# settings that change how fast a stage runs, never what it writes
NOT_IN_KEY = {
    "data": {"root", "workers", "keep_decoded_mb"},
    "labels": {"workers", "shard", "batch_size", "figure_images"},
}
LABEL_UNITS = ("make-labels", "self-train")
# settings newer than records that also match a record without them at a value other than their
# default: the one that does what c3seg did before they existed on a CPU (fp32, eager)
AS_BEFORE = {"precision": "fp32", "compile": "off"}


def units(stage: str, cfg: Config) -> list[str]:
    """The units of a stage: one per method for train-seg, the stage itself otherwise."""
    if stage == "train-seg":
        return [f"train-seg/{m}" for m in cfg.methods if m in METHODS]
    return [stage]


def label_unit(cfg: Config) -> str:
    """The unit whose labels/ train-seg reads: self-train's when it runs, make-labels' otherwise."""
    return "self-train" if cfg.selftrain.rounds > 0 else "make-labels"


def _section(cfg: Config, name: str) -> dict[str, Any]:
    d = dataclasses.asdict(getattr(cfg, name))
    return {k: v for k, v in d.items() if not _speed_only(f"{name}.{k}")}


def listing_fingerprint(data: SegData, split: SplitSet) -> str:
    """A hash of the dataset as the stages see it: classes, every image's id, whether it has a
    mask and its image-level labels, and the split's strong / weak classes."""
    h = hashlib.sha256()
    h.update(json.dumps([data.name, list(data.classes), list(split.strong), list(split.weak)]).encode())
    for part in (data.train, data.val, data.extra_strong):
        for s in part:
            h.update(f"{s.id}|{s.mask is not None}|{s.labels}\n".encode())
        h.update(b"--\n")
    return h.hexdigest()[:16]


def unit_key(unit: str, cfg: Config, listing: str) -> dict[str, Any]:
    """The settings that affect a unit's outputs."""
    if unit == "pretrain":
        return {"pretrain": _section(cfg, "pretrain")}
    key: dict[str, Any] = {"data": _section(cfg, "data"), "listing": listing, "seed": cfg.seed}
    if unit == "train-lnet":
        key["lnet"] = _section(cfg, "lnet")
    elif unit == "train-cam":
        key["cam"] = _section(cfg, "cam")
    elif unit == "make-labels":
        key["labels"] = _section(cfg, "labels")
    elif unit == "self-train":
        key.update(
            selftrain=_section(cfg, "selftrain"), lnet=_section(cfg, "lnet"), labels=_section(cfg, "labels")
        )
    elif unit.startswith("train-seg/"):
        key.update(seg=_section(cfg, "seg"), method=unit.split("/", 1)[1])
    elif unit == "train-pnet":
        key.update(pnet=_section(cfg, "pnet"), seg=_section(cfg, "seg"))
    else:
        raise KeyError(f"no record is kept for {unit!r}")
    return key


def upstream_units(unit: str, cfg: Config) -> list[str]:
    """What a unit reads, as unit names; `unit:source` names one label source of a label unit."""
    deps = []
    if (
        unit in ("train-lnet", "train-cam")
        and (cfg.lnet if unit == "train-lnet" else cfg.cam).pretrained == PRETRAIN
    ):
        deps.append("pretrain")
    if unit == "make-labels":
        deps += ["train-lnet", "train-cam"]
    if unit == "self-train":
        deps.append("make-labels")
    if unit.startswith("train-seg/"):
        source = label_source(unit.split("/", 1)[1])
        if source:
            deps.append(f"{label_unit(cfg)}:{source}")
        if cfg.seg.pretrained == PRETRAIN:
            deps.append("pretrain")
    if unit == "train-pnet":
        deps += [f"train-seg/{PNET_START}", f"{label_unit(cfg)}:{PNET_SOURCE}"]
    return deps


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def folder_hash(folder: Path) -> str:
    """A hash of every file under a folder (names and contents), or "" when it has none."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    for p in files:
        h.update(f"{p.relative_to(folder)}:{file_hash(p)}\n".encode())
    return h.hexdigest()[:16] if files else ""


def result_of(unit: str, run: Run) -> Any:
    """The hash of what a unit wrote, read from disk: a checkpoint's, or per label source (and the
    calibration) a folder's; None when its outputs are missing."""
    if unit in LABEL_UNITS:
        labels = run.labels_root
        if not labels.is_dir():
            return None
        out = {p.name: folder_hash(p) for p in sorted(labels.iterdir()) if p.is_dir()}
        if run.calibration.exists():
            out["calibration"] = file_hash(run.calibration)
        return out or None
    path = run.unit_result(unit)
    return file_hash(path) if path.is_file() else None


def has_outputs(unit: str, run: Run) -> bool:
    """Whether a unit's own outputs are on disk (self-train shares labels/ with make-labels: its
    own mark is its rounds summary)."""
    if unit == "self-train":
        return run.selftrain_summary.exists()
    return result_of(unit, run) is not None


def upstream_result(dep: str, run: Run) -> Any:
    """The recorded result of an upstream unit (or one label source of it); from disk when the
    unit has no record yet (outputs of an older c3seg)."""
    unit, _, source = dep.partition(":")
    rec = read_stamp(run, unit)
    result = rec["result"] if rec and rec.get("status") == "done" else result_of(unit, run)
    if source and isinstance(result, dict):
        return result.get(source)
    return result


def read_stamp(run: Run, unit: str) -> dict[str, Any] | None:
    path = run.stamp(unit)
    if not path.exists():
        return None
    try:
        return read_json(path)
    except (json.JSONDecodeError, OSError):
        return None  # unreadable: treated as absent (the unit is made again or adopted)


def expected_key(unit: str, cfg: Config, listing: str) -> dict[str, Any]:
    return json.loads(json.dumps(unit_key(unit, cfg, listing)))  # as a record reads it back


def expected(unit: str, cfg: Config, run: Run, listing: str) -> dict[str, Any]:
    return {
        "key": expected_key(unit, cfg, listing),
        "upstream": {d: upstream_result(d, run) for d in upstream_units(unit, cfg)},
    }


def _flat(d: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _flat(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, d


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v))


@functools.cache
def _defaults() -> dict[str, Any]:
    """Every setting's default as `section.key` (the paths of unit keys), JSON-plain. New settings
    come with defaults that keep the old behaviour, so a record written before a setting existed
    still matches while that setting is at its default."""
    return {k: _plain(v) for k, v in _flat(dataclasses.asdict(Config()))}


def _as_before(path: str, defaults: dict[str, Any]) -> list[Any]:
    """The values of a setting newer than a record that match the record (`section.key` path)."""
    name = path.rpartition(".")[2]
    return [defaults[path]] + ([AS_BEFORE[name]] if name in AS_BEFORE else [])


def _speed_only(path: str) -> bool:
    """Whether a flat key path (`data.workers`) names a setting of NOT_IN_KEY."""
    section, _, name = path.partition(".")
    return name in NOT_IN_KEY.get(section, set())


def stale_reason(record: dict[str, Any], want: dict[str, Any]) -> str | None:
    """Why a record does not match what a unit would be made from now (None: it matches). A
    setting a record holds but NOT_IN_KEY now names (an older c3seg keyed on it) is ignored."""
    old = {k: v for k, v in _flat(record.get("key", {})) if not _speed_only(k)}
    new = dict(_flat(want["key"]))
    defaults = _defaults()
    changed = [
        k
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
        # a setting newer than the record, left at its default: the record was made as it says
        and not (k not in old and k in defaults and _plain(new.get(k)) in _as_before(k, defaults))
    ]
    reasons = []
    for k in changed[:3]:
        if k == "listing":
            reasons.append("the dataset listing or split changed")
        else:
            was = _short(old[k]) if k in old else "(not recorded)"
            reasons.append(f"{k} {was} -> {_short(new.get(k))}")
    if len(changed) > 3:
        reasons.append(f"{len(changed) - 3} more settings")
    was, now = record.get("upstream", {}), want["upstream"]
    for dep in sorted(set(was) | set(now)):
        if was.get(dep) != now.get(dep):
            unit, _, source = dep.partition(":")
            what = f"{unit}'s {source} labels" if source else f"{unit}'s output"
            reasons.append(f"{what} changed" if now.get(dep) else f"{what} is missing")
    return "; ".join(reasons) or None


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 40 else text[:37] + "..."


def write_stamp(run: Run, unit: str, want: dict[str, Any], status: str, result: Any = None) -> None:
    from c3seg import __version__

    write_json(
        run.stamp(unit), {"unit": unit, "status": status, "c3seg": __version__, **want, "result": result}
    )


def clear(unit: str, run: Run) -> None:
    """Remove a unit's outputs (and what lives inside them), so that its stage makes them anew.
    Self-training is undone: round 1's labels-before/ goes back to labels/."""
    if unit == "self-train":
        before = run.archived_labels(0)
        labels = run.labels_root
        if before.is_dir():
            shutil.rmtree(labels, ignore_errors=True)
            before.rename(labels)
    for path in run.unit_outputs(unit):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if unit == "make-labels":  # selftrain/ went with it: labels/ is made anew, nothing to undo
        run.stamp("self-train").unlink(missing_ok=True)
    run.stamp(unit).unlink(missing_ok=True)


def unit_state(unit: str, cfg: Config, run: Run, listing: str) -> tuple[str, str]:
    """(state, detail) for `c3seg status`: done, stale, partial or missing."""
    rec = read_stamp(run, unit)
    want = expected(unit, cfg, run, listing)
    if rec is None:
        if result_of(unit, run) is not None:
            return "done", "made by an older c3seg; no record of its settings"
        partial = run.unit_outputs(unit) and any(p.exists() for p in run.unit_outputs(unit))
        return ("partial", "outputs without a record") if partial else ("missing", "")
    why = stale_reason(rec, want)
    if why:
        return "stale", why
    if rec.get("status") != "done":
        return "partial", "started, not finished: resumes on the next run"
    return "done", ""
