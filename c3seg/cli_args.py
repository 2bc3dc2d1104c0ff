"""The arguments of each `c3seg` subcommand, one function per command; c3seg.cli.build_parser
lists the commands and what runs them."""

from __future__ import annotations

import argparse
from pathlib import Path

from c3seg.methods import STAGE_NAMES as STAGES


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written; every option's help ends with its default, unless it has none
    (None, False, []) or its help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or action.default is False or action.default == [] or "default" in text:
            return text
        return super()._get_help_string(action)


def _seeds(text: str) -> list[int]:
    from c3seg.headline import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/demo"),
        help="the run folder; with --seeds, one folder per seed in it",
    )
    p.add_argument(
        "--quick", action="store_true", help="a tiny configuration that finishes in about a minute"
    )
    p.add_argument(
        "--config",
        default=None,
        help="a built-in config name or a YAML file to run instead (default: benchmark; tiny with --quick)",
    )
    p.add_argument(
        "--seeds",
        type=_seeds,
        help="run once per seed into OUT/seed-K (data.bench_seed=K, seed=K) and summarize in "
        "OUT/summary.md: a count N (seeds 1..N; 0 is the development seed) or a list like 1,2,3 or 5,",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="let changed settings discard finished outputs of an earlier demo in OUT and remake them",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        help="settings as section.key=value over the benchmark config (tiny with --quick), e.g. "
        "seg.epochs=10 (default: none)",
    )


def add_stage_arguments(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    """What `run` and every per-stage command share: the dataset, the run folder and the settings."""
    p.add_argument("--dataset", help="benchmark | voc:PATH | coco:PATH | folder:PATH (default: from config)")
    p.add_argument(
        "--split", help="a built-in split name or a YAML file of strong categories (default: from config)"
    )
    p.add_argument("--out", required=out_required, type=Path, help="the run folder")
    p.add_argument(
        "--config",
        help="a YAML config file, or a built-in config name (benchmark, tiny, voc, photos); default: the run "
        "folder's config.yaml when it has one, else the built-in defaults",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="let changed settings discard finished outputs and make them again (refused otherwise)",
    )
    p.add_argument(
        "overrides", nargs="*", help="settings as section.key=value, e.g. seg.epochs=10 (default: none)"
    )


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    add_stage_arguments(p)
    p.add_argument("--stages", default="all", help=f"'all' or a comma list of: {', '.join(STAGES)}")


def add_make_labels_arguments(p: argparse.ArgumentParser) -> None:
    add_stage_arguments(p)
    p.add_argument(
        "--workers",
        type=int,
        help="diffusion processes on this machine (default: the config's labels.workers)",
    )
    p.add_argument(
        "--shard",
        help="i/n: this machine makes every n-th weak image's labels from i (default: the "
        "config's labels.shard, 0/1 = all)",
    )


def add_status_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="the run folder (its config.yaml is used)")
    p.add_argument("overrides", nargs="*", help="settings to judge it with, as for run (default: none)")


def add_config_show_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="a YAML config file or a built-in name (default: the built-in defaults)")
    p.add_argument("--markdown", action="store_true", help="as markdown tables (docs/configuration.md)")
    p.add_argument("overrides", nargs="*", help="settings as section.key=value, e.g. train.epochs=1")


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "images", nargs="+", help="image files, folders (searched recursively) or globs ('photos/**/*.jpg')"
    )
    p.add_argument(
        "--run", required=True, type=Path, help="a run folder, or a file written by 'c3seg export'"
    )
    p.add_argument(
        "--method",
        default="pnet",
        help="the run's network to use (pnet, lnet, fully-supervised, ...), or lnet-foreground for the "
        "L-Net's class-agnostic object masks (1 = object)",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (mirrors the input tree)")
    p.add_argument(
        "--crf",
        nargs="?",
        const="fast",
        default="none",
        choices=["none", "fast", "exact"],
        help="dense-CRF refinement: fast (PyTorch, any device) or exact (needs pydensecrf2); --crf alone = fast",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    p.add_argument(
        "--batch-size", type=int, default=8, help="images per forward pass (equal sizes share one)"
    )
    p.add_argument(
        "--overlay", action="store_true", help="also write <name>_overlay.jpg (colours over the image)"
    )


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=Path, help="the run folder")
    p.add_argument("--method", default="pnet", help="which of the run's networks (pnet, lnet, ...)")
    p.add_argument("--out", required=True, type=Path, help="the .safetensors file to write")
    p.add_argument(
        "--no-lnet", action="store_true", help="leave out the L-Net (no foreground maps from the file)"
    )
    p.add_argument(
        "--onnx", type=Path, help="also write an ONNX graph here (needs c3seg[export]); parity checked"
    )
    p.add_argument(
        "--onnx-size",
        type=int,
        nargs=2,
        default=[256, 256],
        metavar=("H", "W"),
        help="example image size for the ONNX export and its parity check",
    )


def add_data_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="benchmark | voc:PATH | coco:PATH | folder:PATH")
    p.add_argument(
        "--split", help="a split YAML (or built-in name) to count strong / weak images (default: none)"
    )


def add_data_download_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "what", choices=["voc", "sbd"], help="voc: VOC 2012 trainval; sbd: the SBD augmentation (train_aug)"
    )
    p.add_argument("--root", type=Path, required=True, help="the folder to download and extract into")


def add_bench_diffusion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--repeats", type=int, default=20, help="images timed per row (medians)")
    p.add_argument("--workers", type=int, default=0, help="also time N worker processes (default 0: 1 and 2)")


def add_bench_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default="benchmark",
        help="whose seg backbone, crop, batch and workers (benchmark, voc, ...)",
    )
    p.add_argument(
        "--backbones",
        help="comma list (tiny, vgg16-largefov, deeplabv3-resnet50; default: the config's seg backbone)",
    )
    p.add_argument("--crop", type=int, help="training crop side (default: the config's data.crop)")
    p.add_argument("--batch", type=int, help="images a training step (default: the config's seg.batch_size)")
    p.add_argument(
        "--eval-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="inference image size (default: 375 500 where the crop is above 200, else the config's "
        "data.bench_size square)",
    )
    p.add_argument("--workers", type=int, help="loader workers (default: the config's data.workers)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (after 3 warm-up steps)")
    p.add_argument(
        "--rows",
        help="comma list of c3seg.bench.train.VARIANTS (default: fp32-eager, bf16, channels_last, compile, ...)",
    )
    p.add_argument("--peak-n", type=int, default=0, help="side of the peak matmuls (0: 2048, 8192 on CUDA)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")


def add_bench_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="voc", help="a built-in config name or a YAML file (default voc)")
    p.add_argument(
        "--train",
        default="20,40",
        help="generated training images of each scaled run (two or more: a line is fitted)",
    )
    p.add_argument("--val", default="5,10", help="generated val images of each scaled run")
    p.add_argument("--size", type=int, default=432, help="their side (432² ≈ VOC's 500×375 pixels)")
    p.add_argument("--epochs", type=int, default=2, help="epochs of every network in the scaled run")
    p.add_argument("--full-train", type=int, default=10_582, help="training images to extrapolate to")
    p.add_argument("--full-val", type=int, default=1_449, help="val images to extrapolate to")
    p.add_argument("--out", type=Path, help="keep the scaled run here (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument(
        "overrides", nargs="*", help="key=value settings, e.g. device=cuda labels.workers=16 (default: none)"
    )


def add_bench_crf_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--repeats", type=int, default=5, help="random probability maps timed (median)")
