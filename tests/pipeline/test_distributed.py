"""torchrun support: two CPU processes (gloo) train and evaluate like one, and agree."""

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
import toydata


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from c3seg.config import load_config
    from c3seg.engine import distributed as dist
    from c3seg.engine.run import Run
    from c3seg.engine.training import load_model
    from c3seg.evaluation.scoring import evaluate_model
    from c3seg.splits import SplitSet
    from c3seg.stages.evaluate import val_pairs
    from c3seg.stages.train_seg import train_seg

    dist.init()
    data = toydata.make(Path(root) / "data")
    split = SplitSet("toy", ("red",), ("green", "blue"))
    cfg = load_config("tiny", ["seg.epochs=2", "seg.batch_size=4", "data.crop=48", "device=cpu"])
    run = Run(Path(root) / "run")
    ckpt = train_seg(cfg, run, data, split, "fully-supervised")
    cm = evaluate_model(load_model(ckpt), val_pairs(data.val), data.num_classes, torch.device("cpu"))
    torch.save(cm.mat, Path(root) / f"cm{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_process_training_and_evaluation(tmp_path):
    toydata.make(tmp_path / "data")  # write the files once, before the processes race
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "run" / "seg" / "fully-supervised" / "model.pt").exists()
    cm0, cm1 = torch.load(tmp_path / "cm0.pt"), torch.load(tmp_path / "cm1.pt")
    assert torch.equal(cm0, cm1)  # all-reduced: every rank holds the whole set's matrix
    assert cm0.sum() == 6 * 48 * 48
