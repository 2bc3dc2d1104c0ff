"""What each output was made from: the records that make stages recompute when, and only when,
something they depend on changed.

A *unit* is what one record covers: a stage, except train-seg, which has one unit per method
(`train-seg/lnet`, ...). Its record (`Run.stamp(unit)`, JSON) holds

  key       the settings that affect its outputs (never workers, devices or batch sizes of
            inference) and the data's fingerprint (`listing_fingerprint`: classes, the split, every
            image's id, labels, and the size and modification time of every image and mask file);
  upstream  the results of the units it reads (an L-Net checkpoint's hash, a label source's hash),
            hashed from their files when compared, so an output rewritten after its own unit ran
            (a label file edited by a tool) makes its readers stale even when that unit is not run;
  result    the hash of what it wrote (a checkpoint, a label folder per source);
  status    "running" from its start, "done" once its outputs are complete.

The record alone says whether a unit is done, checked against its outputs. Before a unit runs,
its expected key and upstream are compared with its record, and its outputs' hash with the
recorded result: all equal and done -> up to date (skipped); equal and running -> the stage
resumes its partial outputs; a key or upstream that differs, or outputs missing or changed ->
stale: its outputs are removed (`clear`) and it is made again, which changes its result, so every
unit downstream becomes stale in turn. Outputs without a record are not trusted: they are removed
and made again. A record that cannot be read is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from c3seg.config import Config
from c3seg.data.imagefolder import imagefolder_path, read_imagefolder
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


def units(stage: str, cfg: Config) -> list[str]:
    """The units of a stage: one per method for train-seg, the stage itself otherwise."""
    if stage == "train-seg":
        return [f"train-seg/{m}" for m in cfg.methods if m in METHODS]
    return [stage]


def label_round(unit: str, cfg: Config) -> int:
    """Which labels folder a label unit writes: make-labels round 0, self-train its last round."""
    return cfg.selftrain.rounds if unit == "self-train" else 0


def label_unit(cfg: Config) -> str:
    """The unit whose labels/ train-seg reads: self-train's when it runs, make-labels' otherwise."""
    return "self-train" if cfg.selftrain.rounds > 0 else "make-labels"


def _section(cfg: Config, name: str) -> dict[str, Any]:
    d = dataclasses.asdict(getattr(cfg, name))
    return {k: v for k, v in d.items() if not _speed_only(f"{name}.{k}")}


def _file_stat(path: Path | None) -> str:
    """size:mtime_ns of a file, "-" for none, "missing" when it is not there (cheap: one stat)."""
    if path is None:
        return "-"
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def listing_fingerprint(data: SegData, split: SplitSet) -> str:
    """A hash of the data as the stages read it: the classes and the split's strong / weak classes;
    for every train, val and extra strong image its id, its image-level labels, and the size and
    modification time of its image and mask files. Editing, replacing or touching a file changes
    it; contents are not hashed (that would read every file on every run)."""
    h = hashlib.sha256()
    h.update(json.dumps([data.name, list(data.classes), list(split.strong), list(split.weak)]).encode())
    for part in (data.train, data.val, data.extra_strong):
        for s in part:
            h.update(f"{s.id}|{s.labels}|{_file_stat(s.image)}|{_file_stat(s.mask)}\n".encode())
        h.update(b"--\n")
    return h.hexdigest()[:16]


def unit_key(unit: str, cfg: Config, listing: str) -> dict[str, Any]:
    """The settings that affect a unit's outputs."""
    if unit == "pretrain":
        folder = imagefolder_path(cfg.pretrain.corpus)
        if folder is None:
            return {"pretrain": _section(cfg, "pretrain")}
        # an ImageFolder's content, not only its path: a class or an image added makes it stale
        return {"pretrain": _section(cfg, "pretrain"), "corpus": read_imagefolder(folder).fingerprint()}
    key: dict[str, Any] = {"data": _section(cfg, "data"), "listing": listing, "seed": cfg.seed}
    if unit == "train-lnet":
        key["lnet"] = _section(cfg, "lnet")
    elif unit == "train-affinity":
        key["affinity"] = _section(cfg, "affinity")
    elif unit == "train-cam":
        key["cam"] = _section(cfg, "cam")
    elif unit == "make-labels":
        key.update(labels=_section(cfg, "labels"), affinity={"enabled": cfg.affinity.enabled})
    elif unit == "self-train":
        key.update(
            selftrain=_section(cfg, "selftrain"), lnet=_section(cfg, "lnet"), labels=_section(cfg, "labels")
        )
        key["affinity"] = {"enabled": cfg.affinity.enabled}
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
    trains = {"train-lnet": cfg.lnet, "train-affinity": cfg.affinity, "train-cam": cfg.cam}
    if unit in trains and trains[unit].pretrained == PRETRAIN:
        deps.append("pretrain")
    if unit == "make-labels":
        deps += ["train-lnet", "train-cam"]
        if cfg.affinity.enabled:
            deps.append("train-affinity")
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


def result_of(unit: str, run: Run, cfg: Config) -> Any:
    """The hash of what a unit wrote, read from disk: a checkpoint's, or per label source (and the
    calibration) a folder's; None when its outputs are missing."""
    if unit in LABEL_UNITS:
        run = run.at_round(label_round(unit, cfg))
        labels = run.labels_root
        if not labels.is_dir():
            return None
        out = {p.name: folder_hash(p) for p in sorted(labels.iterdir()) if p.is_dir()}
        if run.calibration.exists():
            out["calibration"] = file_hash(run.calibration)
        return out or None
    path = run.unit_result(unit)
    return file_hash(path) if path.is_file() else None


def upstream_result(dep: str, run: Run, cfg: Config) -> Any:
    """The result of an upstream unit (or one label source of it) as its outputs hash now; None
    unless its record says done. Read from disk, not from its record: a label file or checkpoint
    rewritten since (by a tool, by hand) makes what reads it stale even when that unit does not run."""
    unit, _, source = dep.partition(":")
    rec = read_stamp(run, unit)
    if not rec or rec.get("status") != "done":
        return None
    if not source:
        return result_of(unit, run, cfg)
    folder = run.at_round(label_round(unit, cfg)).labels_root / source
    return (folder_hash(folder) or None) if folder.is_dir() else None


def read_stamp(run: Run, unit: str) -> dict[str, Any] | None:
    path = run.stamp(unit)
    if not path.exists():
        return None
    try:
        record = read_json(path)
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as e:
        record = e
    if not isinstance(record, dict) or record.get("unit") != unit:
        raise ValueError(
            f"{path} is not a readable record of {unit} ({record if isinstance(record, Exception) else 'wrong content'}); "
            f"delete it and the same command makes {unit} and what depends on it anew"
        )
    return record


def expected_key(unit: str, cfg: Config, listing: str) -> dict[str, Any]:
    return json.loads(json.dumps(unit_key(unit, cfg, listing)))  # as a record reads it back


def expected(unit: str, cfg: Config, run: Run, listing: str) -> dict[str, Any]:
    return {
        "key": expected_key(unit, cfg, listing),
        "upstream": {d: upstream_result(d, run, cfg) for d in upstream_units(unit, cfg)},
    }


def _flat(d: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _flat(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, d


def _speed_only(path: str) -> bool:
    """Whether a flat key path (`data.workers`) names a setting of NOT_IN_KEY."""
    section, _, name = path.partition(".")
    return name in NOT_IN_KEY.get(section, set())


def stale_reason(record: dict[str, Any], want: dict[str, Any]) -> str | None:
    """Why a record does not match what a unit would be made from now (None: it matches)."""
    old = dict(_flat(record.get("key", {})))
    new = dict(_flat(want["key"]))
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
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
    """Remove a unit's outputs (and what lives inside them), so that its stage makes them anew."""
    for path in run.unit_outputs(unit):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    run.stamp(unit).unlink(missing_ok=True)


def outputs_reason(unit: str, run: Run, cfg: Config, record: dict[str, Any]) -> str | None:
    """Why a unit recorded as done is not (its outputs are missing or were changed), or None."""
    now = result_of(unit, run, cfg)
    if now is None:
        return "its outputs are missing"
    if now != record.get("result"):
        return "its outputs were changed or are incomplete"
    return None


def unit_state(unit: str, cfg: Config, run: Run, listing: str) -> tuple[str, str]:
    """(state, detail) for `c3seg status`: done, stale, partial or missing."""
    rec = read_stamp(run, unit)
    if rec is None:
        partial = any(p.exists() for p in run.unit_outputs(unit))
        return ("stale", "outputs without a record: made anew") if partial else ("missing", "")
    why = stale_reason(rec, expected(unit, cfg, run, listing))
    if why:
        return "stale", why
    if rec.get("status") != "done":
        return "partial", "started, not finished: resumes on the next run"
    why = outputs_reason(unit, run, cfg, rec)
    return ("missing", why) if why else ("done", "")
