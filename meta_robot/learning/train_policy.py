"""Train the goal-conditioned BC policy on recorded demonstrations (``meta-robot train policy``).

Data: every finished (by default: successful) episode under a root, resampled at the control rate
(:class:`~meta_robot.dataset.torch_dataset.EpisodeDataset`, cached as npz). Each step's target is
the chunk of the next ``chunk`` commanded TCP targets relative to that step's TCP pose (the last
target repeated past the episode's end: at the end the arm holds still). The goal image of an
episode is its last front frame; it is shown for ``goal_fraction`` of the samples so the policy
works with and without one. Episodes (never steps) are held out per skill for validation.

Outputs in ``out_dir``: ``policy.safetensors`` (weights + config + normalisation), ``policy.yaml``
(code, data, command, settings, history), ``curves.png``, ``checkpoint.safetensors`` (resume).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meta_robot.dataset.torch_dataset import EpisodeDataset
from meta_robot.learning.bc_policy import (
    ACTION_DIM,
    NO_ARGUMENT,
    WEIGHTS_FILE,
    BCConfig,
    BCNetwork,
    relative_actions,
    save_bc_policy,
)
from meta_robot.learning.training import (
    Panel,
    TrainingRun,
    fingerprint,
    split_episodes,
)

CONFIG_FILE = "policy.yaml"
CHECKPOINT_FORMAT = "meta_robot.policy_training/1"


@dataclass(frozen=True)
class PolicyTrainSettings:
    """Everything besides the data that decides the trained weights."""

    epochs: int = 20
    seed: int = 0
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-4
    held_out_fraction: float = 0.1
    goal_fraction: float = 0.5
    # Weight of the auxiliary loss (image features -> true scene state) where the data holds the
    # scene (engine episodes; meta_robot.engine.privileged); 0 turns it off.
    aux_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0 or self.aux_weight < 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1, lr > 0 and aux_weight >= 0")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ValueError(f"held_out_fraction must be in (0, 1), got {self.held_out_fraction}")
        if not 0.0 <= self.goal_fraction <= 1.0:
            raise ValueError(f"goal_fraction must be in [0, 1], got {self.goal_fraction}")


@dataclass
class PolicyTrainResult:
    out_dir: Path
    weights: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class PolicySamples:
    """Arrays of the steps used for training, with their chunk targets and conditioning."""

    steps: np.ndarray  # dataset indices
    chunks: np.ndarray  # (N, chunk, 7) relative targets
    skill: np.ndarray  # (N,) index into config.skills
    arguments: np.ndarray  # (N, max_arguments) index into config.vocabulary
    goal_step: np.ndarray  # (N,) dataset index of the episode's last step (its goal image)


def build_samples(dataset: EpisodeDataset, episodes: Iterable[int], config: BCConfig) -> PolicySamples:
    """Chunk targets and conditioning for every step of ``episodes`` (indices into the dataset)."""
    arrays = dataset.arrays()
    proprio, action = arrays["proprio"], arrays["action"]
    steps, chunks, skills, arguments, goals = [], [], [], [], []
    for e in episodes:
        episode = dataset.episodes[e]
        indices = np.asarray(dataset.episode_steps(e))
        last = len(indices) - 1
        ahead = np.minimum(np.arange(len(indices))[:, None] + np.arange(config.chunk)[None, :], last)
        skill = config.skills.index(episode.skill)
        args = [config.vocabulary.index(a) for a in episode.metadata.arguments]
        args += [0] * (config.max_arguments - len(args))
        for t, i in enumerate(indices):
            chunks.append(relative_actions(proprio[i], action[indices[ahead[t]]]))
        steps.append(indices)
        skills.append(np.full(len(indices), skill))
        arguments.append(np.tile(args, (len(indices), 1)))
        goals.append(np.full(len(indices), indices[-1]))
    if not steps:
        return PolicySamples(
            np.zeros(0, np.int64),
            np.zeros((0, config.chunk, ACTION_DIM), np.float32),
            np.zeros(0, np.int64),
            np.zeros((0, config.max_arguments), np.int64),
            np.zeros(0, np.int64),
        )
    return PolicySamples(
        np.concatenate(steps).astype(np.int64),
        np.stack(chunks).astype(np.float32),
        np.concatenate(skills).astype(np.int64),
        np.concatenate(arguments).astype(np.int64).reshape(-1, config.max_arguments),
        np.concatenate(goals).astype(np.int64),
    )


def _batch(
    dataset_arrays: Mapping[str, np.ndarray],
    samples: PolicySamples,
    rows: np.ndarray,
    cameras: tuple[str, ...],
    goal_camera: str,
    with_goal: np.ndarray,
    device: torch.device,
):
    steps = samples.steps[rows]
    images = {cam: torch.from_numpy(dataset_arrays[cam][steps]).to(device) for cam in cameras}
    state = torch.from_numpy(dataset_arrays["proprio"][steps]).to(device)
    goal = torch.from_numpy(dataset_arrays[goal_camera][samples.goal_step[rows]]).to(device)
    return (
        images,
        state,
        torch.from_numpy(samples.skill[rows]).to(device),
        torch.from_numpy(samples.arguments[rows]).to(device),
        goal,
        torch.from_numpy(with_goal).to(device),
    )


def _aux_target(
    network: BCNetwork, arrays: Mapping[str, np.ndarray], steps: np.ndarray, device
) -> torch.Tensor:
    scene = torch.from_numpy(arrays["privileged"][steps]).to(device)
    return (scene - network.aux_mean) / network.aux_std


@torch.no_grad()
def evaluate(
    network: BCNetwork, arrays: Mapping[str, np.ndarray], samples: PolicySamples, device: torch.device
) -> dict[str, float]:
    """Held-out L1 (normalised, whole chunk) and the first step's position error in cm, without and
    with the goal image; with an auxiliary head, also its mean object position error in cm."""
    network.eval()
    out: dict[str, float] = {}
    c = network.config
    position_columns = _object_position_columns(c.aux_dim)
    for name, goal in (("", False), ("_goal", True)):
        losses, errors, scene_errors, scene_rows = [], [], [], []
        for start in range(0, len(samples.steps), 256):
            rows = np.arange(start, min(start + 256, len(samples.steps)))
            inputs = _batch(arrays, samples, rows, c.cameras, c.goal_camera, np.full(len(rows), goal), device)
            target = torch.from_numpy(samples.chunks[rows]).to(device)
            if c.aux_dim:
                pred, aux = network(*inputs, with_aux=True)
                scene = aux * network.aux_std + network.aux_mean
                truth = torch.from_numpy(arrays["privileged"][samples.steps[rows]]).to(device)
                known = torch.isfinite(truth).all(dim=1)
                delta = (scene - truth)[known][:, position_columns].view(int(known.sum()), -1, 3)
                scene_errors.append(float(delta.norm(dim=2).mean(1).sum()))
                scene_rows.append(int(known.sum()))
            else:
                pred = network(*inputs)
            norm_target = (target - network.action_mean) / network.action_std
            losses.append(float((pred - norm_target).abs().mean()) * len(rows))
            first = pred[:, 0, :3] * network.action_std[:3] + network.action_mean[:3]
            errors.append(float((first - target[:, 0, :3]).norm(dim=1).sum()))
        n = max(len(samples.steps), 1)
        out[f"held_out_l1{name}"] = sum(losses) / n
        out[f"held_out_position_cm{name}"] = 100.0 * sum(errors) / n
        if c.aux_dim and not goal and sum(scene_rows):
            out["held_out_object_cm"] = 100.0 * sum(scene_errors) / sum(scene_rows)
    return out


def _object_position_columns(aux_dim: int) -> list[int]:
    """Columns of the privileged state that are object positions (x, y, z of each 5-column object)."""
    objects = aux_dim // 5  # the trailing columns are the scene's joints (fewer than 5)
    return [5 * k + a for k in range(objects) for a in range(3)]


CURVE_PANELS = (
    Panel(
        "L1 (normalised action chunk)",
        (("train_loss", "train"), ("held_out_l1", "held-out"), ("held_out_l1_goal", "held-out, goal image")),
        log=True,
    ),
    Panel(
        "position error (cm)",
        (
            ("held_out_position_cm", "next target, held-out"),
            ("held_out_position_cm_goal", "next target, held-out, goal image"),
            ("held_out_object_cm", "objects seen in the images (auxiliary head)"),
        ),
    ),
)


def fit_policy(
    dataset: EpisodeDataset,
    out_dir: str | Path,
    settings: PolicyTrainSettings,
    model_options: Mapping[str, Any] | None = None,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    command: str | None = None,
    init_from: str | Path | None = None,
    data_summary: Mapping[str, Any] | None = None,
) -> PolicyTrainResult:
    """Train on ``dataset`` (see the module docstring); returns the metrics written to ``out_dir``.
    ``init_from``: a policy checkpoint of the same shape to start from (weights and normalisation:
    DAgger refits on the grown dataset); ``data_summary`` describes the data in the run record
    instead of the dataset's root folder (a shipped record names no machine paths)."""
    run = TrainingRun(out_dir, device, CONFIG_FILE, CHECKPOINT_FORMAT)
    device = run.device
    if not dataset.episodes:
        raise ValueError(f"no episodes to learn from under {dataset.root}")
    ids = [e.episode_id for e in dataset.episodes]
    split = split_episodes(
        [(e.episode_id, " ".join((e.skill, *e.metadata.arguments))) for e in dataset.episodes],
        settings.seed,
        settings.held_out_fraction,
    )
    held_out_ids = split.calibration + split.test
    if not split.train or not held_out_ids:
        raise ValueError(
            f"need training and held-out episodes; got {len(split.train)}/{len(held_out_ids)} from "
            f"{len(ids)} episodes (at least 3 of one skill)"
        )
    options = dict(model_options or {})
    gripper = dataset.arrays()["action"][:, 7]
    scene = dataset.arrays().get("privileged")  # NaN rows: steps of data without it (recordings)
    if settings.aux_weight > 0 and scene is not None and np.isfinite(scene).all(axis=1).any():
        options.setdefault("aux_dim", int(scene.shape[1]))
    config = BCConfig(
        skills=tuple(dataset.skills),
        vocabulary=(NO_ARGUMENT, *dataset.argument_vocabulary[1:]),
        max_arguments=max(dataset.max_arguments, 1),
        image_size=dataset.image_size,
        fps=dataset.fps,
        gripper_widths=(float(gripper.min()), float(gripper.max())),
        **options,
    )
    train = build_samples(dataset, [ids.index(i) for i in split.train], config)
    held_out = build_samples(dataset, [ids.index(i) for i in held_out_ids], config)
    run_fingerprint = fingerprint(
        {"model": config.to_dict(), "settings": {**asdict(settings), "epochs": None}, "split": asdict(split)}
    )

    torch.manual_seed(settings.seed)
    network = BCNetwork(config)
    arrays = dataset.arrays()
    known_scene = None
    if config.aux_dim:
        known_scene = arrays["privileged"][train.steps]
        known_scene = known_scene[np.isfinite(known_scene).all(axis=1)]
    network.set_normalisation(
        arrays["proprio"][train.steps], train.chunks.reshape(-1, ACTION_DIM), known_scene
    )
    if init_from is not None:
        _warm_start(network, Path(init_from))
    network.to(device)
    optimizer = run.optimizer(network, settings)

    def loss_fn(rows: np.ndarray, generator: torch.Generator, rng: np.random.Generator) -> torch.Tensor:
        with_goal = rng.random(len(rows)) < settings.goal_fraction
        inputs = _batch(arrays, train, rows, config.cameras, config.goal_camera, with_goal, device)
        target = (torch.from_numpy(train.chunks[rows]).to(device) - network.action_mean) / network.action_std
        if not config.aux_dim:
            return (network(*inputs, augment=True, generator=generator) - target).abs().mean()
        pred, aux = network(*inputs, augment=True, generator=generator, with_aux=True)
        aux_target = _aux_target(network, arrays, train.steps[rows], device)
        known = torch.isfinite(aux_target).all(dim=1)
        loss = (pred - target).abs().mean()
        if bool(known.any()):
            loss = loss + settings.aux_weight * (aux[known] - aux_target[known]).abs().mean()
        return loss

    history = run.train(
        network,
        optimizer,
        len(train.steps),
        settings,
        loss_fn,
        lambda: evaluate(network, arrays, held_out, device),
        run_fingerprint,
        resume,
        progress,
    )

    metrics = {
        **(history[-1] if history else {}),
        "samples": {"train": len(train.steps), "held_out": len(held_out.steps)},
    }
    data = {
        **({"summary": dict(data_summary)} if data_summary is not None else {"root": _roots(dataset)}),
        "fps": dataset.fps,
        "image_size": list(dataset.image_size),
        "episodes": {"train": split.train, "held_out": held_out_ids},
    }
    record = run.record(
        "meta_robot.policy_run/1", command, data, config.to_dict(), settings, history, metrics
    )
    weights = save_bc_policy(
        network,
        run.out_dir / WEIGHTS_FILE,
        extra={
            "software": record["software"],
            "command": record["command"],
            **({} if data_summary is not None else {"data_root": _roots(dataset)}),
        },
    )
    run.finish(record, CURVE_PANELS)
    return PolicyTrainResult(run.out_dir, weights, metrics, history)


def _roots(dataset: Any) -> str:
    """Where the data came from, for the run record: one folder, or several joined by " + "."""
    return " + ".join(str(r) for r in getattr(dataset, "roots", [dataset.root]))


def _warm_start(network: BCNetwork, path: Path) -> None:
    """Load a previous run's weights (and its normalisation) into ``network``, or fail saying why."""
    from meta_robot.learning.checkpoints import CheckpointError, read_safetensors

    tensors, metadata = read_safetensors(path)
    if BCConfig.from_dict(json.loads(metadata["config"])) != network.config:
        raise CheckpointError(f"{path}: its network config differs from this run's; cannot start from it")
    network.load_state_dict(tensors, strict=True)


def train_policy(
    root: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    epochs: int = 20,
    seed: int = 0,
    *,
    batch_size: int = 64,
    lr: float = 3e-4,
    held_out_fraction: float = 0.1,
    fps: float = 10.0,
    image_size: tuple[int, int] = (64, 64),
    skills: Iterable[str] | None = None,
    only_successful: bool = True,
    model_options: Mapping[str, Any] | None = None,
    resume: bool = True,
    device: str | None = None,
    progress: bool = True,
    command: str | None = None,
    num_threads: int | None = None,
    cache_dir: str | Path | None = "default",
) -> PolicyTrainResult:
    """``meta-robot train policy``: load (and cache) the episodes under ``root`` (one folder, or
    several: recordings and engine datasets trained on together), train, and write the outputs to
    ``out_dir``; reruns resume from its checkpoint unless ``resume`` is False."""
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    roots = [root] if isinstance(root, str | Path) else list(root)
    skills = list(skills) if skills is not None else None
    parts = [
        load_dataset(r, skills, tuple(image_size), fps, only_successful, cache_dir, progress) for r in roots
    ]
    if len(parts) == 1:
        dataset = parts[0]
    else:
        from meta_robot.dataset.combined import CombinedDataset

        dataset = CombinedDataset(parts)
    settings = PolicyTrainSettings(
        epochs=epochs, seed=seed, batch_size=batch_size, lr=lr, held_out_fraction=held_out_fraction
    )
    return fit_policy(
        dataset,
        out_dir,
        settings,
        model_options,
        resume=resume,
        device=device,
        progress=progress,
        command=command,
    )


def load_dataset(
    root: str | Path,
    skills: Sequence[str] | None,
    image_size: tuple[int, int],
    fps: float,
    only_successful: bool,
    cache_dir: str | Path | None,
    progress: bool,
) -> Any:
    """The episodes under ``root`` as training data: a data engine folder (images rendered from the
    stored states) or the recorder's rosbag2 episodes (resampled at ``fps``, cached)."""
    from meta_robot.engine.store import is_engine_dataset

    if is_engine_dataset(root):
        from meta_robot.engine.dataset import EngineDataset

        return EngineDataset(root, skills, image_size, progress=progress)
    return EpisodeDataset(
        root,
        skills=skills,
        image_size=image_size,
        fps=fps,
        only_successful=only_successful,
        uint8_images=True,
        cache_dir=cache_dir,
    )
