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
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from c3seg import __version__
from c3seg import cli_args as a
from c3seg.cli_args import HelpFormatter
from c3seg.io import NO_SPACE
from c3seg.methods import STAGE_NAMES as STAGES


def _call(target: str, args: argparse.Namespace) -> int:
    module, func = target.split(":")
    return int(getattr(importlib.import_module(module), func)(args) or 0)


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


Command = Callable[[argparse.Namespace], int]
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Formatter = type[argparse.HelpFormatter]


def _lazy(target: str) -> Command:
    """Run 'module:function', importing the module only then (a command's imports are slow)."""
    return lambda args: _call(target, args)


def _command(
    group: Subcommands,
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    func: str | Command,
    description: str | None = None,
    formatter_class: Formatter = HelpFormatter,
) -> argparse.ArgumentParser:
    """Add subcommand `name` with its arguments; func is a function, or 'module:function'."""
    p = group.add_parser(name, help=help, description=description, formatter_class=formatter_class)
    add_arguments(p)
    p.set_defaults(func=_lazy(func) if isinstance(func, str) else func)
    return p


def _group(
    sub: Subcommands, name: str, help: str, dest: str, formatter_class: Formatter = HelpFormatter
) -> Subcommands:
    """A command whose own subcommands are added to the group returned, e.g. `c3seg data check`."""
    p = sub.add_parser(name, help=help, formatter_class=formatter_class)
    return p.add_subparsers(dest=dest, required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c3seg", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and tracebacks on errors"
    )
    parser.add_argument("--version", action="version", version=f"c3seg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    # fmt: off
    # (group, command, one-line help, its arguments, what runs it)
    _command(sub, "demo", "the built-in benchmark end to end: every stage and the Table 2 report",
             a.add_demo_arguments, "c3seg.demo:demo_command")
    _command(sub, "run", "run stages of the pipeline on a dataset",
             a.add_run_arguments, cmd_run)
    for name in STAGES:
        add = a.add_make_labels_arguments if name == "make-labels" else a.add_stage_arguments
        _command(sub, name, f"run the {name} stage (same as run --stages {name})",
                 add, cmd_run).set_defaults(stages=name)
    _command(sub, "status", "each stage of a run folder: done, stale (and why), partial or missing",
             a.add_status_arguments, "c3seg.pipeline:status_command")

    config = _group(sub, "config", "settings", "config_command", formatter_class=argparse.HelpFormatter)
    _command(config, "show", "every setting with its value (default or the config's), allowed range and doc",
             a.add_config_show_arguments, cmd_config_show, formatter_class=argparse.HelpFormatter)

    _command(sub, "predict", "segment images, folders or globs with a trained run or an exported model",
             a.add_predict_arguments, "c3seg.inference.predict:predict_command",
             description="Writes OUT/<input tree>/<name>.png (palette PNG of class indices) per image.")
    _command(sub, "export", "a trained model as one safetensors file with its metadata (and ONNX)",
             a.add_export_arguments, "c3seg.inference.export:export_command")

    data = _group(sub, "data", "dataset tools", "data_command")
    _command(data, "check", "check a dataset for missing, unreadable or malformed files",
             a.add_data_check_arguments, "c3seg.data.check:check_command")
    _command(data, "download", "download PASCAL VOC 2012 or SBD (with checksums)",
             a.add_data_download_arguments, "c3seg.data.voc:download_command")

    bench = _group(sub, "bench", "benchmarks", "bench_command")
    _command(bench, "diffusion", "time self-diffusion and per-image label making",
             a.add_bench_diffusion_arguments, "c3seg.bench.diffusion:bench_command")
    _command(bench, "train", "training and inference throughput: model-only vs the real loop",
             a.add_bench_train_arguments, "c3seg.bench.train:bench_train_command")
    _command(bench, "pipeline", "every stage of a config scaled down and timed, extrapolated to VOC's size",
             a.add_bench_pipeline_arguments, "c3seg.bench.pipeline:bench_pipeline_command")
    _command(bench, "crf", "time the fast and the exact dense CRF (ms an image)",
             a.add_bench_crf_arguments, "c3seg.bench.crf:bench_crf_command")
    # fmt: on
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
