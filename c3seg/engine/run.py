"""The run folder: the one module that knows where every output lives.

RUN/
  config.yaml                  resolved settings of the last invocation
  pretrain/backbone.safetensors what pretrained=pretrain loads: a copy of the corpus-pretrained
                               backbone cached under data.root (source.json: which; log.jsonl)
  lnet/model.pt                L-Net checkpoint (Eq. 1)
  affinity/model.pt            learned affinity embedding (affinity.enabled; log.jsonl beside it)
  cam/model.pt                 CAM classifier checkpoint
  labels/<source>/<id>.png     pseudo labels of weak training images, one folder per label source
  labels/<source>/quality.json pseudo-label IoU on weak training images (evaluation only)
  labels/calibration.json      thresholds chosen on strong images
  selftrain/round<r>/          self-training round r (selftrain.rounds > 0): targets/, lnet/model.pt
                               and labels/ (the same layout as labels/, made with round r's L-Net);
                               train-seg reads the last round's labels
  seg/<method>/model.pt        segmentation network of each method (fully-supervised, strong-only, ...)
  seg/<method>/log.jsonl       training log
  eval/<method>.json           confusion-matrix evaluation on val
  figures/                     Fig. 3-style panels
  report.json, report.md       the Table 2 report
  stages/<unit>.json           what each stage's outputs were made from (c3seg.engine.records)
  .lock                        held by the c3seg process working on this folder
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Run:
    root: Path
    label_round: int = 0  # whose pseudo labels labels_root means: 0 = make-labels', r = self-training round r

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def pretrain_weights(self) -> Path:
        """The backbone weights that `pretrained=pretrain` loads (written by the pretrain stage)."""
        return self.root / "pretrain" / "backbone.safetensors"

    @property
    def pretrain_source(self) -> Path:
        """Where the pretrain stage's weights were copied from, with their settings and last metrics."""
        return self.root / "pretrain" / "source.json"

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def checkpoint(self, stage: str) -> Path:
        """stage: 'lnet', 'affinity', 'cam' or 'seg/<method>'."""
        return self.root / stage / "model.pt"

    def state(self, stage: str) -> Path:
        """The resumable training state (last epoch) of a stage, beside its checkpoint."""
        return self.root / stage / "last.pt"

    def train_log(self, stage: str) -> Path:
        return self.root / stage / "log.jsonl"

    def at_round(self, r: int) -> Run:
        """The same run folder, its labels_root being self-training round r's (0: make-labels')."""
        return replace(self, label_round=r)

    @property
    def labels_root(self) -> Path:
        """One folder per label source, and the calibration: labels/ for round 0, else
        selftrain/round<r>/labels/."""
        if self.label_round == 0:
            return self.root / "labels"
        return self.selftrain_round(self.label_round) / "labels"

    def labels_dir(self, source: str) -> Path:
        return self.labels_root / source

    def label_path(self, source: str, sample_id: str) -> Path:
        return self.labels_dir(source) / f"{sample_id}.png"

    @property
    def calibration(self) -> Path:
        """Thresholds chosen on strong images for every label source (make-labels)."""
        return self.labels_root / "calibration.json"

    def label_quality(self, source: str) -> Path:
        return self.labels_dir(source) / "quality.json"

    @property
    def seg_dir(self) -> Path:
        """seg/: one folder per segmentation method."""
        return self.root / "seg"

    def seg_stage(self, method: str) -> str:
        return f"seg/{method}"

    def selftrain_round(self, r: int) -> Path:
        """Self-training round r (1, 2, ...): its weak-image targets, its L-Net and its labels."""
        return self.root / "selftrain" / f"round{r}"

    def selftrain_lnet(self, r: int) -> str:
        """The stage name of round r's L-Net ('lnet' for round 0): checkpoint(...) / state(...)."""
        return "lnet" if r == 0 else f"selftrain/round{r}/lnet"

    def selftrain_target(self, r: int, sample_id: str) -> Path:
        return self.selftrain_round(r) / "targets" / f"{sample_id}.png"

    @property
    def selftrain_summary(self) -> Path:
        """Per round: the L-Net's hold-out score and the pseudo labels' quality (evaluation only)."""
        return self.root / "selftrain" / "rounds.json"

    def evaluation(self, method: str) -> Path:
        return self.root / "eval" / f"{method}.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def timings(self) -> Path:
        """Wall seconds of each unit's last making (c3seg.pipeline.record_seconds)."""
        return self.root / "timings.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def stamps_dir(self) -> Path:
        return self.root / "stages"

    def stamp(self, unit: str) -> Path:
        """The record of what a unit's outputs were made from (unit: a stage, or train-seg/<method>)."""
        return self.stamps_dir / f"{unit.replace('/', '.')}.json"

    def unit_outputs(self, unit: str) -> list[Path]:
        """Everything a unit writes, removed when it is made anew (c3seg.engine.records.clear)."""
        if unit.startswith("train-seg/"):
            return [self.root / self.seg_stage(unit.split("/", 1)[1])]
        return {
            "pretrain": [self.pretrain_weights.parent],
            "train-lnet": [self.stage_dir("lnet")],
            "train-affinity": [self.stage_dir("affinity")],
            "train-cam": [self.stage_dir("cam")],
            "make-labels": [self.root / "labels", self.figures / "fig3.png"],
            "self-train": [self.root / "selftrain"],
            "train-pnet": [self.root / self.seg_stage("pnet"), self.stage_dir("pnet")],
        }[unit]

    def unit_result(self, unit: str) -> Path:
        """The file whose hash is a training unit's result (what downstream units read)."""
        if unit == "pretrain":
            return self.pretrain_weights
        stage = self.unit_stage(unit)
        if stage is None:
            raise KeyError(f"{unit} trains no network")
        return self.checkpoint(stage)

    def unit_stage(self, unit: str) -> str | None:
        """The stage folder of a unit that trains a network (its checkpoint, its log.jsonl); None
        for the units that train none (make-labels, self-train, evaluate) and for pretrain."""
        if unit.startswith("train-seg/"):
            return self.seg_stage(unit.split("/", 1)[1])
        stages = {"train-lnet": "lnet", "train-affinity": "affinity", "train-cam": "cam"}
        return {**stages, "train-pnet": self.seg_stage("pnet")}.get(unit)
