"""engine.training.fit, the epoch loop of train-lnet, train-affinity, train-cam and train-seg."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import c3seg.engine.training as training
from c3seg.config import TrainConfig
from c3seg.engine.run import Run
from c3seg.io import load_checkpoint

TC = TrainConfig(epochs=4, batch_size=4, lr=0.1, optimizer="sgd", amp=False, compile="off")
SCORES = [0.2, float("nan"), 0.7, 0.5]  # epoch 1 cannot score: kept until a score beats -1


def train(run: Run, keep_best: bool = True) -> tuple[nn.Module, tuple[int, float]]:
    training.seed_everything(0)
    model, device = nn.Linear(3, 1), torch.device("cpu")
    ds = TensorDataset(torch.randn(16, 3), torch.randn(16, 1), torch.arange(16))
    loader = training.make_loader(ds, TC.batch_size, 0, train=True)
    opt = training.make_optimizer(model, TC)
    epochs = iter(SCORES[len(read_log(run)) :])  # a resumed run scores the epochs it still runs

    def step(x: torch.Tensor, y: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(model(x), y)

    def score(net: nn.Module) -> dict[str, float]:
        return {"holdout_x": next(epochs)}

    best = ("holdout_x", "best_x") if keep_best else None
    return model, training.fit(run, "toy", model, opt, loader, TC, 0, device, step, score, best)


def read_log(run: Run) -> list[dict]:
    path = run.train_log("toy")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_fit_keeps_the_best_epoch_and_logs_each(tmp_path: Path) -> None:
    run = Run(tmp_path / "run")
    model, (epoch, score) = train(run)
    assert (epoch, score) == (2, 0.7)  # its weights, not the last epoch's
    rows = read_log(run)
    assert [list(r) for r in rows] == [["epoch", "loss", "holdout_x", "best_epoch", "seconds"]] * 4
    assert [r["best_epoch"] for r in rows] == [0, 1, 2, 2]
    state = load_checkpoint(run.state("toy"))
    assert state["best_epoch"] == 2 and state["epoch"] == 3
    weights = model.state_dict().values()
    assert all(torch.equal(a, b) for a, b in zip(weights, state["best_model"].values()))
    assert not all(torch.equal(a, b) for a, b in zip(weights, state["model"].values()))  # the last's
    _, (last, _) = train(Run(tmp_path / "last"), keep_best=False)
    assert last == -1 and "best_epoch" not in read_log(Run(tmp_path / "last"))[0]


def test_an_interrupted_fit_resumes_bit_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole, _ = train(Run(tmp_path / "whole"))
    run, real = Run(tmp_path / "cut"), training.save_state

    def save_then_fail(path: Path, **state: object) -> None:
        real(path, **state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt("simulated interruption")

    with monkeypatch.context() as m:
        m.setattr(training, "save_state", save_then_fail)
        with pytest.raises(KeyboardInterrupt):
            train(run)
    resumed, result = train(run)
    assert result == (2, 0.7) and [r["epoch"] for r in read_log(run)] == [0, 1, 2, 3]
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
