"""What every trainer here shares: episode-level splits, per-epoch seeds, resumable checkpoints.

Training is deterministic for a seed (per-epoch random streams derived from it) and resumable: each
epoch ends with a safetensors checkpoint of the weights, the optimiser and the history, and a rerun
with the same data and settings continues from it to the same result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from meta_robot.learning.checkpoints import CheckpointError, atomic_save, read_safetensors

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.safetensors"  # the training state at the end of the last epoch
CURVES_FILE = "curves.png"


@dataclass
class Split:
    train: list[str]
    calibration: list[str]
    test: list[str]


def split_episodes(episodes: Sequence[tuple[str, str]], seed: int, held_out_fraction: float) -> Split:
    """Split (episode_id, group) pairs per group so every group is in every part where it can be:
    a group with n >= 3 episodes holds out max(2, round(n * fraction)), alternately calibration and
    test; fewer episodes all train. Depends only on the ids, the seed and the fraction.

    :func:`fit` groups by skill *and* arguments, so that an object's atoms (``(in_drawer blue_bar)``)
    have positives among the calibration episodes, not only among the training ones."""
    by_skill: dict[str, list[str]] = {}
    for episode_id, skill in sorted(episodes):
        by_skill.setdefault(skill, []).append(episode_id)
    split = Split([], [], [])
    for skill in sorted(by_skill):
        ids = by_skill[skill]
        rng = np.random.default_rng([seed, int(hashlib.sha1(skill.encode()).hexdigest()[:8], 16)])
        ids = [ids[i] for i in rng.permutation(len(ids))]
        held = 0 if len(ids) < 3 else min(len(ids) - 1, max(2, round(len(ids) * held_out_fraction)))
        split.calibration += ids[:held:2]
        split.test += ids[1:held:2]
        split.train += ids[held:]
    return Split(sorted(split.train), sorted(split.calibration), sorted(split.test))


def software_info() -> dict[str, Any]:
    from meta_robot.recording.episode import software_info

    info = software_info()
    info.pop("ros_distro", None)
    info["torch"] = str(torch.__version__)
    return info


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.default_rng([seed, epoch]).integers(2**62))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Adam's state as flat tensors plus its (JSON) param groups: safetensors holds tensors only."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value)
    return tensors, json.dumps(state["param_groups"])


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], groups: str
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(groups)})


def fingerprint(data: Any) -> str:
    """A stable digest of JSON-able settings: a resumed run must have been started with the same."""
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def save_training_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    kind: str,
    run_fingerprint: str,
    epoch: int,
    history: Sequence[Mapping[str, float]],
) -> None:
    """End-of-epoch checkpoint (weights + optimiser + history) that :func:`restore_training_state`
    continues from."""
    tensors, groups = optimizer_tensors(optimizer)
    atomic_save(
        {**{f"model.{k}": v for k, v in model.state_dict().items()}, **tensors},
        path,
        {
            "format": kind,
            "fingerprint": run_fingerprint,
            "epoch": str(epoch),
            "history": json.dumps(list(history)),
            "param_groups": groups,
        },
    )


def restore_training_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    kind: str,
    run_fingerprint: str,
) -> tuple[int, list[dict[str, float]]]:
    """Load a checkpoint written by :func:`save_training_state` into ``model`` and ``optimizer``;
    returns (epochs done, history). Refuses, naming the file, a checkpoint of another kind or of a run
    with other data or settings."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != kind:
        raise CheckpointError(f"checkpoint {path}: not a {kind} training checkpoint")
    if meta.get("fingerprint") != run_fingerprint:
        raise CheckpointError(
            f"checkpoint {path} was made with other data, split or settings; "
            "use another output folder or start afresh"
        )
    model_tensors = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_tensors, strict=True)
        restore_optimizer(
            optimizer, {k: v for k, v in tensors.items() if k.startswith("optim.")}, meta["param_groups"]
        )
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: does not fit the model ({exc})") from exc
    return int(meta["epoch"]), json.loads(meta["history"])


def training_device(device: str | torch.device | None) -> torch.device:
    """The device to train on (CUDA when present), with reproducible convolutions on the GPU too."""
    from meta_robot.learning.nets import select_device

    device = select_device(device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return device


LossFn = Callable[[np.ndarray, torch.Generator, np.random.Generator], torch.Tensor]


def train_epochs(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    samples: int,
    epochs: int,
    seed: int,
    batch_size: int,
    loss_fn: LossFn,
    evaluate_fn: Callable[[], Mapping[str, float]],
    checkpoint: Path,
    kind: str,
    run_fingerprint: str,
    resume: bool = True,
    progress: bool = True,
) -> list[dict[str, float]]:
    """The shared epoch loop: shuffled mini-batches of sample indices, ``loss_fn(rows, generator,
    rng)`` per batch (``generator`` for augmentation, ``rng`` for any other per-batch draw, both
    derived from the seed and the epoch), ``evaluate_fn()`` after each epoch, and an end-of-epoch
    checkpoint that a rerun resumes from. Returns the history (one dict per epoch)."""
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume and checkpoint.exists():
        start_epoch, history = restore_training_state(checkpoint, model, optimizer, kind, run_fingerprint)
        logger.info("resuming from %s after epoch %d", checkpoint, start_epoch)
    steps = math.ceil(samples / batch_size)
    for epoch in range(start_epoch, epochs):
        this_seed = epoch_seed(seed, epoch)
        torch.manual_seed(this_seed)  # dropout
        generator = torch.Generator().manual_seed(this_seed)
        rng = np.random.default_rng(this_seed)
        order = rng.permutation(samples)
        model.train()
        total = 0.0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress)
        for step in bar:
            rows = np.sort(order[step * batch_size : (step + 1) * batch_size])
            loss = loss_fn(rows, generator, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            total += value * len(rows)
            bar.set_postfix(loss=f"{value:.4f}")
        model.eval()
        history.append({"epoch": epoch + 1, "train_loss": total / samples, **evaluate_fn()})
        logger.info("epoch %d: %s", epoch + 1, history[-1])
        save_training_state(checkpoint, model, optimizer, kind, run_fingerprint, epoch + 1, history)
    return history


@dataclass(frozen=True)
class Panel:
    """One subplot of the training curves: history keys (with labels) against the epoch."""

    ylabel: str
    series: tuple[tuple[str, str], ...]  # (history key, legend label)
    log: bool = False
    ylim: tuple[float, float] | None = None


def plot_history(history: Sequence[Mapping[str, float]], path: Path, panels: Sequence[Panel]) -> None:
    """Training curves as a PNG, one panel beside the other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for key, label in panel.series:
            if all(key in h for h in history):  # a series some runs do not have (an optional head)
                ax.plot(epochs, [h[key] for h in history], "o-", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel.ylabel)
        if panel.log:
            ax.set_yscale("log")
        if panel.ylim:
            ax.set_ylim(*panel.ylim)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


class TrainingRun:
    """The skeleton every trainer fills with its data, model and loss: the output folder and device,
    the optimiser, the resumable epoch loop (checkpointed in ``out_dir``), and the run record
    (``record_file``: software, command, data, model, settings, history, metrics) with its curves."""

    def __init__(
        self,
        out_dir: str | Path,
        device: str | torch.device | None,
        record_file: str,
        checkpoint_format: str,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = training_device(device)
        self.record_file, self.checkpoint_format = record_file, checkpoint_format

    @staticmethod
    def optimizer(model: torch.nn.Module, settings: Any) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

    def train(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        samples: int,
        settings: Any,
        loss_fn: LossFn,
        evaluate_fn: Callable[[], Mapping[str, float]],
        run_fingerprint: str,
        resume: bool = True,
        progress: bool = True,
    ) -> list[dict[str, float]]:
        """:func:`train_epochs` for ``settings.epochs`` epochs of ``settings.batch_size``."""
        return train_epochs(
            model,
            optimizer,
            samples,
            settings.epochs,
            settings.seed,
            settings.batch_size,
            loss_fn,
            evaluate_fn,
            self.out_dir / CHECKPOINT_FILE,
            self.checkpoint_format,
            run_fingerprint,
            resume=resume,
            progress=progress,
        )

    def record(
        self,
        record_format: str,
        command: str | None,
        data: Mapping[str, Any],
        model: Mapping[str, Any],
        settings: Any,
        history: list[dict[str, float]],
        metrics: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The run record: what a reader needs to know where the weights came from."""
        return {
            "format": record_format,
            "software": software_info(),
            "command": command or shlex.join(sys.argv),
            "data": dict(data),
            "model": dict(model),
            "settings": asdict(settings),
            "device": str(self.device),
            "history": history,
            "metrics": dict(metrics),
        }

    def finish(self, record: Mapping[str, Any], panels: Sequence[Panel]) -> None:
        """Write the record and, after at least one epoch, the curves."""
        (self.out_dir / self.record_file).write_text(
            yaml.safe_dump(dict(record), sort_keys=False), encoding="utf-8"
        )
        if record["history"]:
            plot_history(record["history"], self.out_dir / CURVES_FILE, panels)
