"""A user's error is one line that says what to do, never a traceback, with the CLI's exit status
for it (c3seg.cli.user_error), and nothing is written before the check."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import c3seg
from c3seg.cli import main
from c3seg.config import load_config, save_config
from c3seg.inference.api import ModelInfo, Segmenter
from c3seg.inference.export import export_safetensors
from c3seg.io import TMP_MARK, write_image
from c3seg.models import build_model
from c3seg.splits import load_split

REPO = Path(__file__).resolve().parents[1]


def _c3seg(*args: str, **kw) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "c3seg.cli", *args], env=env, text=True, **kw)


def _default_sigint() -> None:
    """A terminal's SIGINT in the child: a test runner started in the background inherits SIGINT
    ignored, and Python keeps an ignored SIGINT ignored, so Ctrl-C would never reach the run."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _segmenter() -> Segmenter:
    return Segmenter(build_model("tiny", 3), ModelInfo(classes=["background", "a", "b"], backbone="tiny"))


def _run_args(tmp_path: Path, *extra: str) -> list[str]:
    """`c3seg run` on the tiny config; `extra`: options, then any key=value settings."""
    return [
        "run",
        "--config",
        "tiny",
        "--out",
        str(tmp_path / "run"),
        *extra,
        f"data.root={tmp_path / 'data'}",
    ]


@pytest.mark.parametrize(
    "error, status, line",
    [
        (KeyboardInterrupt(), 130, "interrupted; the same command resumes"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/d/run/run.log"),
            2,
            "no space left on /d/run: free",
        ),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "a.png/x"), 2, "Not a directory: 'a.png/x'"),
    ],
)
def test_errors_for_the_user_are_one_line(tmp_path, monkeypatch, caplog, error, status, line) -> None:
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("c3seg.pipeline.run_stages", fail)
    assert main(_run_args(tmp_path)) == status
    assert line in caplog.text and len(caplog.records) == 1


def test_ctrl_c_in_a_real_run_then_the_same_command_resumes(tmp_path) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, in the middle of
    training; then the same command finishes the stage."""
    args = _run_args(tmp_path, "--stages", "train-lnet", "lnet.epochs=4")
    proc = _c3seg(*args, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_default_sigint)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # the first epoch is logged: a stage is under way
        seen.append(line)
        if "epoch=0" in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, "".join(seen) + rest
    assert "Traceback" not in rest and rest.strip().endswith("interrupted; the same command resumes"), rest
    again = _c3seg(*args, stderr=subprocess.PIPE)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "resuming" in err, err
    assert (tmp_path / "run" / "lnet" / "model.pt").exists()


def test_label_workers_ignore_ctrl_c() -> None:
    from c3seg.stages.make_labels import _pool

    pool = _pool(2)
    assert pool is not None
    try:
        pids = [p.pid for p in pool._processes.values()]  # every worker started by _pool
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGINT)
        time.sleep(0.5)
        assert sum(pool.map(int, range(4))) == 6  # still working
    finally:
        pool.shutdown()


def _full(*args, **kwargs):
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")


def test_torch_save_on_a_full_disk_is_one_line(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(torch, "save", _full)  # what torch.save raises on a full disk (not an OSError)
    assert main(_run_args(tmp_path, "--stages", "train-lnet")) == 2
    assert f"no space left on {tmp_path / 'run' / 'lnet'}" in caplog.text
    assert not [p for p in (tmp_path / "run").rglob(f"*{TMP_MARK}*")]


def test_a_real_full_disk_is_one_line(tmp_path, caplog) -> None:
    """A 1 MiB tmpfs as the run folder: config.yaml fits, the L-Net's checkpoint does not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        args = ["run", "--config", "tiny", "--out", str(disk / "run"), "--stages", "train-lnet"]
        assert main([*args, f"data.root={tmp_path / 'data'}"]) == 2
        assert f"no space left on {disk / 'run' / 'lnet'}" in caplog.text
        assert not [p for p in disk.rglob(f"*{TMP_MARK}*")]
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def test_malformed_config_and_split_files_are_one_line(tmp_path, caplog) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seg: {epochs: 3\nlnet: 2\n")
    out = tmp_path / "run"
    assert main(["run", "--config", str(bad), "--out", str(out)]) == 2
    assert f"{bad} is not valid YAML" in caplog.text and "line 2" in caplog.text
    listed = tmp_path / "split.yaml"
    listed.write_text("- cat\n- dog\n")
    assert main(_run_args(tmp_path, "--split", str(listed))) == 2
    assert f"{listed} holds a list, not keys and values; write e.g. 'strong: [cat, dog]'" in caplog.text
    listed.write_text("strong: [cat, dog\n")
    assert main(_run_args(tmp_path, "--split", str(listed))) == 2
    assert f"{listed} is not valid YAML" in caplog.text
    assert not out.exists()  # refused before the run folder was made
    listed.write_text("strong: cat\n")
    with pytest.raises(ValueError, match="'strong' must be a list of class names"):
        load_split(listed, ["background", "cat", "dog"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_says_how_to_use_the_cpu(tmp_path, caplog) -> None:
    assert main(_run_args(tmp_path, "device=cuda")) == 2
    assert "sees no CUDA GPU; use device=cpu" in caplog.text
    assert not (tmp_path / "run").exists()  # refused before config.yaml (or anything) was written
    image = tmp_path / "x.png"
    write_image(image, np.zeros((8, 8, 3), np.uint8))
    assert main(["predict", str(image), "--run", "r", "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "use --device cpu" in caplog.text
    exported = export_safetensors(_segmenter(), tmp_path / "m.safetensors", with_lnet=False)
    with pytest.raises(ValueError, match='use device="cpu"'):  # from Python: the argument, not the flag
        c3seg.load(exported, device="cuda")
    with pytest.raises(ValueError, match="is not a device"):
        Segmenter(_segmenter().net, _segmenter().info, device="gpu")


def test_status_into_a_closed_pipe_stops_quietly(tmp_path) -> None:
    """`c3seg status RUN | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    run = tmp_path / "run"
    save_config(load_config("tiny", [f"data.root={tmp_path / 'data'}"]), run / "config.yaml")
    proc = _c3seg("status", str(run), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # gone before status prints its first line
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_output_paths_of_the_wrong_kind_are_refused_first(tmp_path, caplog) -> None:
    image, taken = tmp_path / "x.png", tmp_path / "taken.txt"
    write_image(image, np.zeros((8, 8, 3), np.uint8))
    taken.write_text("mine")
    assert main(["predict", str(image), "--run", "r", "--out", str(taken)]) == 2
    assert f"--out {taken} is a file" in caplog.text and taken.read_text() == "mine"
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "old.safetensors").write_text("mine")
    assert main(["export", "--run", str(tmp_path / "no-run"), "--out", str(folder)]) == 2
    assert f"--out {folder} is a folder" in caplog.text
    assert [p.name for p in folder.iterdir()] == ["old.safetensors"]


def test_an_empty_image_is_refused(tmp_path) -> None:
    seg = _segmenter()
    with pytest.raises(ValueError, match="the image is empty"):
        seg.predict(np.zeros((0, 0, 3), np.uint8))
    assert seg.predict(np.zeros((1, 1, 3), np.uint8)).shape == (1, 1)
