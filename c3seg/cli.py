"""The `c3seg` command: one subcommand per job.

c3seg demo [--out DIR] [--quick] [--config NAME] [--seeds N|a,b,...] [key=value ...]
c3seg run --dataset SPEC --split SPLIT --out DIR [--stages a,b] [--config FILE] [key=value ...]
c3seg pretrain | train-lnet | train-affinity | train-cam | make-labels | train-seg | train-pnet | evaluate  (= run --stages NAME)
c3seg predict --run DIR|FILE --method pnet IMAGE|FOLDER|GLOB... --out DIR [--crf fast|exact] [--overlay]
c3seg export --run DIR --method pnet --out FILE.safetensors [--onnx FILE.onnx]
c3seg status RUN
c3seg config show [--config NAME] [--markdown] [key=value ...]
c3seg data check DATASET [--split FILE]
c3seg data download voc|sbd --root DIR
c3seg bench diffusion [--json]
c3seg bench train [--config voc] [--json]
c3seg bench pipeline [--config voc] [--train N,M --val N,M --epochs E] [--json] [key=value ...]
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from pathlib import Path

from c3seg import __version__
from c3seg.io import NO_SPACE
from c3seg.methods import STAGE_NAMES as STAGES


def _call(target: str, args: argparse.Namespace) -> int:
    module, func = target.split(":")
    return int(getattr(importlib.import_module(module), func)(args) or 0)


def _add_run_args(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    p.add_argument("--dataset", help="benchmark | voc:PATH | coco:PATH | folder:PATH (default: from config)")
    p.add_argument(
        "--split", help="a built-in split name or a YAML file of strong categories (default: from config)"
    )
    p.add_argument("--out", required=out_required, type=Path, help="the run folder")
    p.add_argument(
        "--config",
        help="a YAML config file, or a built-in config name (benchmark, voc, tiny); default: the run "
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


def cmd_run(args: argparse.Namespace) -> int:
    from c3seg.config import load_config
    from c3seg.engine.run import Run
    from c3seg.pipeline import parse_stages, run_stages

    overrides = list(args.overrides)
    if args.dataset:
        overrides.append(f"data.dataset={args.dataset}")
    if args.split:
        overrides.append(f"data.split={args.split}")
    if getattr(args, "workers", None):
        overrides.append(f"labels.workers={args.workers}")
    if getattr(args, "shard", None):
        overrides.append(f"labels.shard={args.shard}")
    run = Run(args.out)
    base = args.config
    if base is None and run.config.exists():
        base = str(run.config)  # a run folder's own settings are the default for later commands
    cfg = load_config(base, overrides)
    run_stages(cfg, run, parse_stages(args.stages), force=args.force)
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    from c3seg.config import load_config
    from c3seg.config_doc import markdown, text

    cfg = load_config(args.config, args.overrides)
    print((markdown if args.markdown else text)(cfg), end="")
    return 0


def _seeds(text: str) -> list[int]:
    from c3seg.headline import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written; every option's help ends with its default, unless it has none
    (None, False, []) or its help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or action.default is False or action.default == [] or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c3seg", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and tracebacks on errors"
    )
    parser.add_argument("--version", action="version", version=f"c3seg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo",
        help="the built-in benchmark end to end: every stage and the Table 2 report",
        formatter_class=HelpFormatter,
    )
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
    p.set_defaults(func=lambda a: _call("c3seg.demo:demo_command", a))

    p = sub.add_parser("run", help="run stages of the pipeline on a dataset", formatter_class=HelpFormatter)
    _add_run_args(p)
    p.add_argument("--stages", default="all", help=f"'all' or a comma list of: {', '.join(STAGES)}")
    p.set_defaults(func=cmd_run)

    for name in STAGES:
        p = sub.add_parser(
            name, help=f"run the {name} stage (same as run --stages {name})", formatter_class=HelpFormatter
        )
        _add_run_args(p)
        if name == "make-labels":
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
        p.set_defaults(func=cmd_run, stages=name)

    p = sub.add_parser(
        "status",
        help="each stage of a run folder: done, stale (and why), partial or missing",
        formatter_class=HelpFormatter,
    )
    p.add_argument("run", type=Path, help="the run folder (its config.yaml is used)")
    p.add_argument("overrides", nargs="*", help="settings to judge it with, as for run (default: none)")
    p.set_defaults(func=lambda a: _call("c3seg.pipeline:status_command", a))

    config = sub.add_parser("config", help="settings").add_subparsers(dest="config_command", required=True)
    p = config.add_parser(
        "show", help="every setting with its value (default or the config's), allowed range and doc"
    )
    p.add_argument("--config", help="a YAML config file or a built-in name (default: the built-in defaults)")
    p.add_argument("--markdown", action="store_true", help="as markdown tables (docs/configuration.md)")
    p.add_argument("overrides", nargs="*", help="settings as section.key=value, e.g. train.epochs=1")
    p.set_defaults(func=cmd_config_show)

    p = sub.add_parser(
        "predict",
        help="segment images, folders or globs with a trained run or an exported model",
        description="Writes OUT/<input tree>/<name>.png (palette PNG of class indices) per image.",
        formatter_class=HelpFormatter,
    )
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
    p.set_defaults(func=lambda a: _call("c3seg.inference.predict:predict_command", a))

    p = sub.add_parser(
        "export",
        help="a trained model as one safetensors file with its metadata (and ONNX)",
        formatter_class=HelpFormatter,
    )
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
    p.set_defaults(func=lambda a: _call("c3seg.inference.export:export_command", a))

    data = sub.add_parser("data", help="dataset tools", formatter_class=HelpFormatter).add_subparsers(
        dest="data_command", required=True
    )
    p = data.add_parser(
        "check",
        help="check a dataset for missing, unreadable or malformed files",
        formatter_class=HelpFormatter,
    )
    p.add_argument("dataset", help="benchmark | voc:PATH | coco:PATH | folder:PATH")
    p.add_argument(
        "--split", help="a split YAML (or built-in name) to count strong / weak images (default: none)"
    )
    p.set_defaults(func=lambda a: _call("c3seg.data.check:check_command", a))
    p = data.add_parser(
        "download", help="download PASCAL VOC 2012 or SBD (with checksums)", formatter_class=HelpFormatter
    )
    p.add_argument(
        "what", choices=["voc", "sbd"], help="voc: VOC 2012 trainval; sbd: the SBD augmentation (train_aug)"
    )
    p.add_argument("--root", type=Path, required=True, help="the folder to download and extract into")
    p.set_defaults(func=lambda a: _call("c3seg.data.voc:download_command", a))

    bench = sub.add_parser("bench", help="benchmarks", formatter_class=HelpFormatter).add_subparsers(
        dest="bench_command", required=True
    )
    p = bench.add_parser(
        "diffusion", help="time self-diffusion and per-image label making", formatter_class=HelpFormatter
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--repeats", type=int, default=20, help="images timed per row (medians)")
    p.add_argument("--workers", type=int, default=0, help="also time N worker processes (default 0: 1 and 2)")
    p.set_defaults(func=lambda a: _call("c3seg.bench.diffusion:bench_command", a))
    p = bench.add_parser(
        "train",
        help="training and inference throughput: model-only vs the real loop",
        formatter_class=HelpFormatter,
    )
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
    p.set_defaults(func=lambda a: _call("c3seg.bench.train:bench_train_command", a))
    p = bench.add_parser(
        "pipeline",
        help="every stage of a config scaled down and timed, extrapolated to VOC's size",
        formatter_class=HelpFormatter,
    )
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
    p.set_defaults(func=lambda a: _call("c3seg.bench.pipeline:bench_pipeline_command", a))
    p = bench.add_parser(
        "crf", help="time the fast and the exact dense CRF (ms an image)", formatter_class=HelpFormatter
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--repeats", type=int, default=5, help="random probability maps timed (median)")
    p.set_defaults(func=lambda a: _call("c3seg.bench.crf:bench_crf_command", a))
    return parser


# exit statuses: 2 for a user error (as argparse's), 130 for Ctrl-C and 141 for a closed pipe
# (128 + the signal, as a shell reports a process the signal stopped)
USER_ERROR, INTERRUPTED, BROKEN_PIPE = 2, 130, 141
PATH_ERRNOS = (errno.EACCES, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST)


def user_error(e: BaseException) -> tuple[str, int] | None:
    """The one line and the exit status with which the CLI answers an exception that is the user's
    to act on (bad input, a missing file, Ctrl-C, a full disk, a reader that stopped reading), or
    None for a bug or a system fault, whose traceback is kept. The one place that decides this."""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted; the same command resumes", INTERRUPTED
    if isinstance(e, BrokenPipeError):
        return "", BROKEN_PIPE  # `c3seg status RUN | head`: the reader has what it wanted
    if isinstance(e, FileNotFoundError | ValueError | KeyError):
        text = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError's str() adds quotes
        return f"{text} (run with -v for the traceback)", USER_ERROR
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        if str(e.strerror).startswith(NO_SPACE):  # c3seg.io.atomic_path's: where, and what to do
            return str(e.strerror), USER_ERROR
        where = Path(e.filename).parent if e.filename else "the output device"
        return f"{NO_SPACE} {where}: free some space and rerun the same command", USER_ERROR
    if isinstance(e, OSError) and e.errno in PATH_ERRNOS:  # a read-only disk, or a path of the wrong kind
        return str(e), USER_ERROR
    return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipeError."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = args.verbose
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )
        return args.func(args)
    except (Exception, KeyboardInterrupt) as e:
        answer = None if verbose else user_error(e)  # -v: every error with its traceback
        if answer is None:
            raise
    message, status = answer
    if status == BROKEN_PIPE:
        _silence_stdout()
    elif message:
        logging.getLogger("c3seg").error("%s", message)
    return status


if __name__ == "__main__":
    sys.exit(main())
