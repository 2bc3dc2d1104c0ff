"""Settings: frozen dataclasses, loaded from YAML, with `section.key=value` overrides.

    cfg = load_config("configs/benchmark.yaml", ["seg.epochs=5", "labels.n_segments=300"])

A `train:` section in the YAML (or `train.key=value` on the command line) sets TrainConfig keys
for every network at once (pretrain, lnet, cam, seg); a network's own section overrides them. The
resolved config, explicit per network, is saved beside every result (`save_config`).
`data.root`, the cache folder,
is made absolute once, here: a relative one is taken from the folder the command runs in, an
empty one is $C3SEG_CACHE or ~/.cache/c3seg (`cache_root`).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from c3seg.io import read_yaml

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "benchmark"  # benchmark | voc:PATH | coco:PATH | folder:PATH (| voc:PATH+coco:PATH)
    extra: str = ""  # split 4: a dataset of extra strong images, e.g. coco:PATH (same as dataset A+B)
    sbd: str = ""  # SBD folder (with cls/, train.txt, val.txt); empty = look beside VOCdevkit
    split: str = "bench-half"  # a built-in split name or a YAML file
    # the cache folder: the generated benchmark and corpus, pretrained weights, and what c3seg derives
    # from a dataset (label caches, converted masks), never written into a dataset's own folder;
    # "" = $C3SEG_CACHE, else ~/.cache/c3seg. Absolute once loaded (see cache_root)
    root: str = ""
    bench_train: int = 2000  # training images of the generated benchmark
    bench_val: int = 500  # val images of the generated benchmark
    bench_size: int = 112  # image side of the generated benchmark (pixels)
    bench_seed: int = 0  # which draw of the benchmark is generated (0 = the development draw)
    crop: int = 96  # training crop side (321 for VOC)
    scale_min: float = 0.75  # random rescale range for training: lowest factor
    scale_max: float = 1.25  # random rescale range for training: highest factor
    workers: int = 2  # DataLoader workers
    # with workers 0, a training set keeps its decoded images in memory after the first epoch when
    # they fit in this many MiB (c3seg.data.torchdata); 0 = decode at every read
    keep_decoded_mb: int = 1024
    holdout: float = 0.1  # fraction of training images (strong and weak) held out to choose checkpoints

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", str(cache_root(self.root)))


CACHE_ENV = "C3SEG_CACHE"
DEFAULT_CACHE = "~/.cache/c3seg"


def cache_root(root: str | Path = "") -> Path:
    """The cache folder as an absolute path: `root` (data.root) when set, else $C3SEG_CACHE, else
    ~/.cache/c3seg; a relative one is taken from the current folder (symbolic links kept)."""
    text = str(root or "") or os.environ.get(CACHE_ENV, "") or DEFAULT_CACHE
    return Path(os.path.abspath(Path(text).expanduser()))


@dataclass(frozen=True)
class TrainConfig:
    """One network's training: the sections pretrain, lnet, cam and seg (a config's `train:`
    section sets these keys for all four at once)."""

    backbone: str = "tiny"  # see c3seg.models.BACKBONES
    # "" (from scratch) | imagenet (torchvision's, downloaded on first use) | a torchvision weights
    # name (ResNet50_Weights.IMAGENET1K_V2) | a .pt/.pth/.safetensors file (offline); see
    # c3seg.models.weights | pretrain (the backbone trained by this run's pretrain stage).
    # true / false are accepted too and mean imagenet / "".
    pretrained: str = ""
    epochs: int = 20  # passes over the training images
    batch_size: int = 32  # images per step
    lr: float = 0.01  # base learning rate, decayed by the poly schedule (power 0.9) over all steps
    momentum: float = 0.9  # SGD momentum (sgd only)
    weight_decay: float = 5e-4  # L2 weight decay (sgd), decoupled weight decay (adamw)
    optimizer: str = "sgd"  # sgd (DeepLab's, the paper's) | adamw (faster for the tiny CPU net)
    # learning-rate multiple of the output layer (the backbone's head_key, DeepLab's fc8): DeepLab
    # trains its classifier at 10x the base rate (lr_mult 10 in its prototxt); 1 = one rate for all
    head_lr_mult: float = 1.0
    # augmentations that hide what is specific to a class, so the class-agnostic L-Net learns what
    # transfers to unseen categories; the L-Net's and pretrain's only, per image in the loader (c3seg.data.transforms.train_transform)
    hue: float = 0.0  # random hue shift in [-hue, hue] (0..0.5)
    colour: bool = False  # brightness/contrast/saturation jitter, 20% grayscale, channel permutation
    affine: float = 0.0  # random rotation in [-affine, affine] degrees, shear in [-0.8, 0.8] x that
    amp: bool = True  # false: fp32 on every device, whatever `precision` says (the older switch)
    # auto: bf16 autocast on CUDA and on a CPU with native bf16 (1.3-1.7x faster there), else fp32 |
    # fp32 | bf16 (on any device; emulated, slower, on a CPU without it); also how the stage scores its hold-out
    precision: str = "auto"
    compile: str = "auto"  # torch.compile the training network: on | off | auto (c3seg.engine.precision)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pretrained", pretrained_setting(self.pretrained))
        if isinstance(self.compile, bool):  # YAML reads a bare on / off as a boolean
            object.__setattr__(self, "compile", "on" if self.compile else "off")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r}: choose auto, fp32 or bf16")
        if self.compile not in ("auto", "on", "off"):
            raise ValueError(f"compile={self.compile!r}: choose auto, on or off")
        if self.precision == "bf16" and not self.amp:
            raise ValueError("precision=bf16 with amp=false (which means fp32): set one of them")


@dataclass(frozen=True)
class CamConfig(TrainConfig):
    """train-cam: TrainConfig plus how the class score maps are pooled into image-level logits."""

    # gap: global average pooling (Zhou et al.'s CAM) | gmp: global max pooling (learns faster for a
    # small net trained from scratch, as on the benchmark)
    pool: str = "gap"


@dataclass(frozen=True)
class SegConfig(TrainConfig):
    """train-seg: TrainConfig plus an optional image-level term on every training image."""

    # weight of `train_seg.image_label_loss` (each foreground class's largest softmax probability
    # against the image-level label, as SEC's expansion loss with max pooling); 0 = off
    label_loss: float = 0.0
    # class-balanced cross-entropy: class c's pixels weigh (median class frequency / frequency of c
    # in this method's training masks) ** class_balance; 0 = plain cross-entropy (the paper's),
    # 0.5 = inverse square root, 1 = median frequency balancing (Eigen and Fergus 2015)
    class_balance: float = 0.0


@dataclass(frozen=True)
class LabelConfig:
    """make-labels: SLIC superpixels + random-walk self-diffusion (Eq. 2); see c3seg.diffusion."""

    method: str = "ranking"  # ranking ((D - aW)^-1 y) | clamped (seeds=1, confident background=0)
    superpixels: str = "slic"  # slic | fast (SLIC at half resolution) | opencv (needs opencv-contrib)
    n_segments: int = 600  # superpixels per image (about)
    compactness: float = 10.0  # SLIC: higher gives more regular superpixels, lower follows colour more
    slic_iters: int = 5  # SLIC k-means iterations
    sigma: float = 0.2  # Eq. 2: z_ij = exp(-|F_i - F_j| / 2 sigma^2)
    alpha: float = 0.99  # ranking only
    # thresholds below are defaults; with calibrate=true they are chosen on strong images
    seed_threshold: float = 0.6  # superpixel mean normalized CAM above which it is a class seed
    bg_fg_threshold: float = 0.2  # superpixel mean M below which (and CAM below bg_cam) it is background
    bg_cam_threshold: float = 0.2  # superpixel mean CAM below which (and M below bg_fg) it is background
    min_q: float = 0.5  # a superpixel whose largest q is below this stays background
    fg_gate: float = 1.01  # a superpixel with mean M >= this takes its best class (> 1: off)
    ignore_uncertain: bool = False  # label 255 (no loss) where the solve says background but no anchor does
    cam_threshold: float = 0.3  # the CAM-threshold baseline: pixel class = argmax CAM where CAM > this
    fg_threshold: float = 0.5  # the lnet-cam baseline: argmax CAM where M > this
    # w of the learned affinity in the diffusion's edge weights, z_ij^(1-w) a_ij^w (0 = Eq. 2's
    # z_ij alone); read only when the run has an affinity model (affinity.enabled), where
    # calibrate=true chooses it from {0, 0.5, 1} (c3seg.diffusion.calibrate.AFFINITY_GRID)
    affinity_weight: float = 0.5
    calibrate: bool = True  # grid-search the thresholds on strong training images (labels/calibration.json)
    calib_images: int = 40  # strong images used by the calibration (evenly spread over `calib_set`)
    # which strong images calibrate: train (every strong training image, most of which the L-Net and
    # the CAM classifier trained on) | holdout (the strong hold-out, which neither network saw)
    calib_set: str = "train"
    calib_tolerance: float = 1.0  # mIoU points: near-best settings, among which the best without M wins
    batch_size: int = 8  # network forward passes, images of equal size batched
    # multi-scale inference of M and the CAMs (image rescaled by each factor, mirrored too, maps
    # averaged at the input size); (1.0,) = one pass (the CAMs are always flip-averaged)
    scales: tuple[float, ...] = (1.0,)
    figure_images: int = 4  # weak images shown in figures/fig3.png
    workers: int = 1  # processes for the CPU diffusion (one BLAS thread each)
    shard: str = "0/1"  # i/n: this process makes labels for every n-th weak image from i

    def __post_init__(self) -> None:
        if self.calib_set not in ("train", "holdout"):
            raise ValueError(f"calib_set={self.calib_set!r}: choose train or holdout")


@dataclass(frozen=True)
class PNetConfig:
    """train-pnet: P-Net (Table 1) pre-training (Eq. 5) and adversarial fine-tuning (Eq. 4, 5).

    The paper's setting: lr_seg=1e-5, lr_pnet=1e-3, optim_seg=sgd, optim_pnet=sgd. On the
    benchmark's tiny net, SGD at 1e-3 leaves the P-Net at chance (constant output) and lr_seg=1e-5
    does not move a net trained at lr 0.01; the defaults below (Adam 1e-4 for the P-Net, SGD 1e-3
    for the segmentation net) let the P-Net learn within two epochs."""

    pretrain_epochs: int = 2  # P-Net alone on strong images, segmentation net fixed (Eq. 5)
    finetune_epochs: int = 1  # both nets on strong GT + pseudo labels (Eq. 4, 5)
    batch_size: int = 16  # images per step, in pre-training and fine-tuning
    lr_seg: float = 1e-3  # paper: 1e-5
    lr_pnet: float = 1e-4  # paper: 1e-3 (with sgd)
    optim_seg: str = "sgd"  # sgd (momentum / weight decay from `seg`) | adam
    optim_pnet: str = "adam"  # adam (betas 0.5, 0.999, the usual GAN setting) | sgd (momentum 0.9; paper)
    lam: float = 0.1  # λ of Eq. 3-4
    input_size: int = 64  # P-Net input side S (images and maps are resized to S×S; fc4 has 128·(S/8)² inputs)
    eval_every: int = 1  # fine-tuning epochs between checkpoint selections on the hold-out
    # what chooses the checkpoint: "strong" (strong hold-out mIoU) | "strong+labels" (its mean with
    # the weak hold-out's agreement with image-level labels; see c3seg.stages.train_pnet)
    select: str = "strong+labels"


@dataclass(frozen=True)
class PretrainConfig(CamConfig):
    """pretrain: the backbone as an image-level classifier, in the role of the paper's ImageNet
    pretraining; read where lnet/cam/seg.pretrained=pretrain. On the generated corpus (labels only,
    never the evaluation data) a multi-label classifier; on an ImageFolder corpus of photographs a
    single-label one. See c3seg.stages.pretrain, c3seg.data.synthetic.corpus, c3seg.data.imagefolder."""

    images: int = 6000  # generated corpus images (a `holdout` part of them logs mAP each epoch)
    extra_categories: int = 32  # new procedural categories beside the benchmark's 16 (generated corpus)
    size: int = 112  # generated image side; an ImageFolder's images are resized and cropped to it
    crop: int = 96  # training crop side (generated corpus)
    holdout: float = 0.05  # held out: of the generated corpus, or of train/ without val/
    seed: int = 0  # corpus images and training; weights are cached per setting and shared by runs
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.003
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    pool: str = "gmp"
    # shapes (the generated corpus) | imagefolder:PATH (photographs in PATH/train/<class>/*.jpg,
    # optional PATH/val/<class>/*.jpg: ImageNet's layout; a single-label classifier over the classes)
    corpus: str = "shapes"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.corpus != "shapes" and not (
            self.corpus.startswith("imagefolder:") and self.corpus.split(":", 1)[1].strip()
        ):
            raise ValueError(f"corpus={self.corpus!r}: use shapes or imagefolder:PATH")


@dataclass(frozen=True)
class AffinityConfig(TrainConfig):
    """train-affinity (beyond the paper, RETAB / AffinityNet; off unless enabled): the backbone
    with a `dim`-channel embedding head, trained on strong masks so that a_ij = exp(-|e_i - e_j|_1)
    says whether two pixels lie in the same region; make-labels mixes a_ij into the diffusion's
    edge weights (labels.affinity_weight). See c3seg.stages.train_affinity."""

    enabled: bool = False  # train it and use it in make-labels; false = the paper's graph exactly
    dim: int = 32  # D, embedding channels at the backbone's output stride
    radius: int = 5  # pixel pairs within this many feature-grid cells form the loss's pairs


@dataclass(frozen=True)
class SelfTrainConfig:
    """self-train (beyond the paper; off with rounds=0): each round fine-tunes the L-Net on strong
    masks plus targets from weak images' pseudo labels (labelled object = 1, confident background
    = 0, the rest void), then makes the labels again with it. See c3seg.stages.self_train."""

    rounds: int = 0  # self-training rounds (0 = off)
    epochs: int = 6  # per round, over strong + weak training images, from the previous round's L-Net
    lr: float = 0.001  # the L-Net's learning rate in each round
    void_band: int = 3  # pixels around each labelled object left void in the targets (its extent is unsure)
    # which epoch's L-Net a round keeps: last | best (the best strong hold-out foreground IoU, which
    # cannot see the weak categories the round is for)
    keep: str = "last"

    def __post_init__(self) -> None:
        if self.keep not in ("last", "best"):
            raise ValueError(f"selftrain.keep={self.keep!r}: choose last or best")


@dataclass(frozen=True)
class EvalConfig:
    """evaluate: which methods are also evaluated after a dense CRF (the paper's Table 3 applies
    one to its results), reported as rows "<method>+crf" with the CRF's time per image."""

    crf: str = "fast"  # fast (c3seg.inference.crf, PyTorch, any device) | exact (pydensecrf2: pip install 'c3seg[crf]')
    crf_methods: tuple[str, ...] = ()  # e.g. [pnet] or [lnet, pnet, fully-supervised]

    def __post_init__(self) -> None:
        if self.crf not in ("fast", "exact"):
            raise ValueError(f"crf={self.crf!r}: choose fast or exact")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    lnet: TrainConfig = field(default_factory=TrainConfig)
    affinity: AffinityConfig = field(default_factory=AffinityConfig)
    cam: CamConfig = field(default_factory=CamConfig)
    seg: SegConfig = field(default_factory=SegConfig)
    pnet: PNetConfig = field(default_factory=PNetConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    selftrain: SelfTrainConfig = field(default_factory=SelfTrainConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    # segmentation methods trained by train-seg (see c3seg.stages.train_seg.METHODS); train-pnet adds "pnet"
    methods: tuple[str, ...] = ("fully-supervised", "strong-only", "cam-threshold", "lnet", "pnet")
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # initial weights, data order and augmentation of the training stages


# the sections that are TrainConfigs: a `train:` section's keys apply to each of them
TRAIN_SECTIONS = ("pretrain", "lnet", "affinity", "cam", "seg")


def pretrained_setting(value: str | bool | None) -> str:
    """The `pretrained` setting as a string: "" (none), "imagenet", or a weights name / file.

    YAML `pretrained: true` and `pretrained=true` on the command line mean "imagenet"; false, no,
    none or nothing mean ""."""
    if isinstance(value, bool):
        return "imagenet" if value else ""
    text = "" if value is None else str(value).strip()
    if text.lower() in ("", "none", "false", "no", "off", "0"):
        return ""
    if text.lower() in ("imagenet", "true", "yes", "on", "1"):
        return "imagenet"
    return text


def _coerce(value: str, typ: Any) -> Any:
    if typ is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if typ in (int, float):
        return typ(value)
    return value


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise KeyError(f"unknown setting {where}{sorted(unknown)[0]}; valid: {', '.join(sorted(names))}")
    kwargs = {}
    for key, val in values.items():
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            if not isinstance(val, dict):
                raise ValueError(
                    f"{where}{key} is a section of settings, not one value: set its keys, "
                    f"e.g. {where}{key}.epochs=10"
                )
            kwargs[key] = _build(typ, val, f"{where}{key}.")  # type: ignore[arg-type]
        elif typing.get_origin(typ) is tuple:
            items = val.strip("[]()").split(",") if isinstance(val, str) else list(val)
            elem = typing.get_args(typ)[0]  # tuple[float, ...] -> float
            try:
                kwargs[key] = tuple(
                    _coerce(x.strip(), elem)
                    if isinstance(x, str) and elem is not str
                    else x.strip()
                    if isinstance(x, str)
                    else x
                    for x in items
                    if x != ""
                )
            except ValueError:
                raise ValueError(f"{where}{key}={val!r}: expected a list of {elem.__name__}") from None
        elif isinstance(val, str) and typ is not str:
            try:
                kwargs[key] = _coerce(val, typ)
            except ValueError:
                raise ValueError(f"{where}{key}={val!r}: expected {getattr(typ, '__name__', typ)}") from None
        elif typ is float and isinstance(val, int):
            kwargs[key] = float(val)
        else:
            kwargs[key] = val
    try:
        return cls(**kwargs)
    except ValueError as e:  # a section's own check (__post_init__): name the section
        raise ValueError(f"{where}{e}") from None


def _shared_train(tree: dict[str, Any]) -> dict[str, Any]:
    """`tree` with its `train` section's keys copied into every TrainConfig section that does not
    set them itself (`train: {lr: 0.003}` + `cam: {lr: 0.01}` -> cam.lr 0.01, every other lr 0.003)."""
    tree = dict(tree)
    shared = tree.pop("train", None) or {}
    if not isinstance(shared, dict):
        raise ValueError("train is a section of settings shared by every network, e.g. train.epochs=10")
    valid = {f.name for f in dataclasses.fields(TrainConfig)}
    if set(shared) - valid:
        unknown = sorted(set(shared) - valid)[0]
        raise KeyError(f"unknown setting train.{unknown}; valid: {', '.join(sorted(valid))}")
    for name in TRAIN_SECTIONS:
        own = tree.get(name) or {}
        if isinstance(own, dict):  # anything else is refused by _build, naming the section
            inherited = dict(shared)
            if name == "pretrain" and inherited.get("pretrained") == "pretrain":
                del inherited["pretrained"]  # the stage cannot start from itself: pretrain the others
            tree[name] = {**inherited, **own}
    return tree


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top`'s settings over `base`'s, section by section."""
    out = dict(base)
    for key, value in top.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def _set(tree: dict[str, Any], dotted: str, value: str) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        tree = tree.setdefault(k, {})
    tree[keys[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A Config from a YAML file (or the defaults) with `a.b=value` overrides applied last.

    A bare name like `benchmark` is looked up in the package's configs folder. Precedence, lowest
    first: the dataclass defaults, the file's `train`, the file's network sections, the command
    line's `train.x=`, the command line's `lnet.x=` (and the other sections)."""
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists() and (CONFIG_DIR / f"{path}.yaml").exists():
            p = CONFIG_DIR / f"{path}.yaml"
        if not p.exists():
            raise FileNotFoundError(
                f"config {path} not found; built-in: {[q.stem for q in CONFIG_DIR.glob('*.yaml')]}"
            )
        tree = read_yaml(p, "'seg: {epochs: 10}' (a section, then its settings)")
    given: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        _set(given, key.strip(), value.strip())
    cfg = _build(Config, _merge(_shared_train(tree), _shared_train(given)), "")
    check_ranges(cfg)
    check_pretrained_backbones(cfg)
    return cfg


# setting -> (lowest allowed, highest allowed or None); "*" matches every section that has the key
RANGES: dict[str, tuple[float, float | None]] = {
    "data.crop": (8, None),
    "data.bench_train": (1, None),
    "data.bench_val": (1, None),
    "data.bench_size": (16, None),
    "data.scale_min": (0.05, None),
    "data.scale_max": (0.05, None),
    "data.workers": (0, None),
    "data.holdout": (0.0, 0.9),
    "*.epochs": (0, None),
    "*.batch_size": (1, None),
    "*.lr": (0.0, None),
    "*.weight_decay": (0.0, None),
    "labels.n_segments": (2, None),
    "labels.workers": (1, None),
    "labels.calib_images": (1, None),
    "labels.affinity_weight": (0.0, 1.0),
    "affinity.dim": (1, None),
    "affinity.radius": (1, None),
    "pnet.input_size": (8, None),
    "pretrain.size": (8, None),
    "selftrain.rounds": (0, None),
    "seg.label_loss": (0.0, None),
    "*.head_lr_mult": (0.0, None),
    "seg.class_balance": (0.0, 2.0),
}


def check_ranges(cfg: Config) -> None:
    """Refuse settings no stage can run with (a negative crop, zero batch size, ...), naming them."""
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        if not dataclasses.is_dataclass(section):
            continue
        for g in dataclasses.fields(section):
            rng = RANGES.get(f"{f.name}.{g.name}") or RANGES.get(f"*.{g.name}")
            value = getattr(section, g.name)
            if rng is None or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            low, high = rng
            if value < low or (high is not None and value > high):
                bound = f"at least {low}" if high is None else f"between {low} and {high}"
                raise ValueError(f"{f.name}.{g.name}={value}: must be {bound}")
    if cfg.data.scale_min > cfg.data.scale_max:
        raise ValueError(f"data.scale_min={cfg.data.scale_min} is above data.scale_max={cfg.data.scale_max}")


def check_pretrained_backbones(cfg: Config) -> None:
    """Refuse a network that loads the pretrain stage's weights (`pretrained=pretrain`) into another
    backbone than the one that stage trains (`pretrain.backbone`): the run would pretrain for
    minutes, then fail on the first network. One backbone a run is pretrained."""
    for name in TRAIN_SECTIONS:
        tc = getattr(cfg, name)
        if name == "pretrain" or (name == "affinity" and not cfg.affinity.enabled):
            continue
        if tc.pretrained == "pretrain" and tc.backbone != cfg.pretrain.backbone:
            raise ValueError(
                f"{name}.backbone={tc.backbone} with {name}.pretrained=pretrain, but the pretrain stage "
                f"trains pretrain.backbone={cfg.pretrain.backbone}: set train.backbone=... (every network "
                f"and the pretrain stage share it), or {name}.pretrained='' (from scratch) or a weights file"
            )


def config_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> Path:
    from c3seg.io import write_text

    return write_text(path, yaml.safe_dump(config_dict(cfg), sort_keys=False))
