"""Train the predicate classifier on recorded episodes, calibrate a threshold per atom, report metrics.

Episodes (never steps: neighbouring frames are near copies) are split by seed, per skill, into
train / calibration / test. Thresholds are chosen on the calibration episodes for the target
false-positive rate; the rates reported for ``test`` are measured on episodes that neither trained
the weights nor chose the thresholds. Training is deterministic for a seed (per-epoch random streams
derived from it) and resumable: every epoch ends with a safetensors checkpoint of the weights and the
optimiser, and a rerun with the same settings continues from it to the same result.

Outputs in ``out_dir``: ``classifier.safetensors`` (weights + config + thresholds),
``classifier.yaml`` (code, data, command, settings, metrics), ``curves.png``, ``checkpoint.safetensors``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from meta_robot.learning.checkpoint_registry import resolve_checkpoint
from meta_robot.learning.classifier import (
    WEIGHTS_FILE,
    ClassifierConfig,
    LoadedClassifier,
    PredicateClassifier,
    load_classifier,
    predict_probabilities,
    save_classifier,
)
from meta_robot.learning.metrics import calibrated_threshold, rates_at_threshold, roc_auc
from meta_robot.learning.predicate_data import (
    CLASSIFIER_FPS,
    DEFAULT_IMAGE_SIZE,
    PredicateDataset,
    SampleArrays,
    concatenate,
    load_dataset,
)
from meta_robot.learning.training import (
    Panel,
    TrainingRun,
    fingerprint,
    split_episodes,
)

logger = logging.getLogger(__name__)

CONFIG_FILE = "classifier.yaml"
CHECKPOINT_FORMAT = "meta_robot.classifier_training/1"
MIN_SAMPLES_FOR_CURVES = 10


@dataclass(frozen=True)
class TrainSettings:
    """Everything besides the data that decides the trained weights."""

    epochs: int = 10
    seed: int = 0
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    held_out_fraction: float = 0.3  # of each skill's episodes; half calibrate, half test
    max_fpr: float = 0.02
    min_tpr: float | None = 0.9  # calibration aims between the two targets where both can be met

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1 and lr > 0")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ValueError(f"held_out_fraction must be in (0, 1), got {self.held_out_fraction}")
        if not 0.0 <= self.max_fpr < 1.0:
            raise ValueError(f"max_fpr must be in [0, 1), got {self.max_fpr}")
        if self.min_tpr is not None and not 0.0 < self.min_tpr <= 1.0:
            raise ValueError(f"min_tpr must be in (0, 1] or None, got {self.min_tpr}")


@dataclass
class TrainResult:
    out_dir: Path
    weights: Path
    metrics: dict[str, Any]
    thresholds: dict[str, float | None]
    history: list[dict[str, float]] = field(default_factory=list)


def _masked_bce(logits: torch.Tensor, labels: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (loss * known).sum() / known.sum().clamp(min=1.0)


def _batch(arrays: SampleArrays, idx: np.ndarray, cameras: Sequence[str], device: torch.device):
    images = {cam: torch.from_numpy(getattr(arrays, cam)[idx]).to(device) for cam in cameras}
    state = torch.from_numpy(arrays.state[idx]).to(device)
    labels = torch.from_numpy(arrays.labels[idx].astype(np.float32)).to(device)
    known = torch.from_numpy(arrays.known[idx].astype(np.float32)).to(device)
    return images, state, labels, known


def evaluate(
    model: PredicateClassifier, arrays: SampleArrays, batch_size: int = 256
) -> tuple[np.ndarray, float]:
    """Probabilities on ``arrays`` (no augmentation) and the masked BCE loss."""
    probs = predict_probabilities(
        model, {cam: getattr(arrays, cam) for cam in model.config.cameras}, arrays.state, batch_size
    )
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    y = arrays.labels
    loss = -(y * np.log(p) + (~y) * np.log(1 - p))
    return probs, float((loss * arrays.known).sum() / max(arrays.known.sum(), 1))


def calibrate(
    atoms: Sequence[str],
    calibration: tuple[np.ndarray, SampleArrays],
    test: tuple[np.ndarray, SampleArrays],
    max_fpr: float,
    min_tpr: float | None = None,
) -> tuple[dict[str, float | None], dict[str, dict[str, Any]]]:
    """Per atom: threshold on the calibration samples for ``max_fpr`` (with a margin towards
    ``min_tpr`` where both can be met, see :func:`calibrated_threshold`); AUC and rates on both parts.
    An atom with no negative calibration sample gets no threshold (None)."""
    thresholds: dict[str, float | None] = {}
    report: dict[str, dict[str, Any]] = {}

    def clean(x: float) -> float | None:
        return None if x is None or not math.isfinite(x) else round(float(x), 6)

    for j, atom in enumerate(atoms):
        entry: dict[str, Any] = {}
        (cal_p, cal), (test_p, tst) = calibration, test
        cal_known, test_known = cal.known[:, j], tst.known[:, j]
        cal_y, cal_s = cal.labels[cal_known, j], cal_p[cal_known, j]
        test_y, test_s = tst.labels[test_known, j], test_p[test_known, j]
        threshold = calibrated_threshold(cal_y, cal_s, max_fpr, min_tpr) if len(cal_y) else math.inf
        thresholds[atom] = clean(threshold)
        for part, y, s in (("calibration", cal_y, cal_s), ("test", test_y, test_s)):
            fpr, tpr = rates_at_threshold(y, s, threshold) if len(y) else (math.nan, math.nan)
            entry[part] = {
                "auc": clean(roc_auc(y, s)) if len(y) else None,
                "fpr": clean(fpr),
                "tpr": clean(tpr),
                "positives": int(y.sum()),
                "negatives": int((~y).sum()),
            }
        entry["threshold"] = thresholds[atom]
        report[atom] = entry
    return thresholds, report


CURVE_PANELS = (
    Panel("masked BCE", (("train_loss", "train"), ("held_out_loss", "held-out")), log=True),
    Panel(
        "AUC",
        (("held_out_mean_auc", "mean AUC (held-out)"), ("held_out_min_auc", "min AUC (held-out)")),
        ylim=(0.4, 1.01),
    ),
)


def _auc_summary(atoms: Sequence[str], probs: np.ndarray, arrays: SampleArrays) -> tuple[float, float]:
    aucs = []
    for j in range(len(atoms)):
        k = arrays.known[:, j]
        y = arrays.labels[k, j]
        if min(int(y.sum()), int((~y).sum())) < MIN_SAMPLES_FOR_CURVES:
            continue  # an AUC from a handful of samples is noise on the plot
        auc = roc_auc(y, probs[k, j])
        if math.isfinite(auc):
            aucs.append(auc)
    return (float(np.mean(aucs)), float(np.min(aucs))) if aucs else (math.nan, math.nan)


def fit(
    dataset: PredicateDataset,
    out_dir: str | Path,
    settings: TrainSettings,
    model_options: Mapping[str, Any] | None = None,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    command: str | None = None,
    init_from: LoadedClassifier | None = None,
) -> TrainResult:
    """Train on ``dataset`` (see the module docstring); returns the metrics written to ``out_dir``.

    ``init_from`` fine-tunes a trained classifier (its architecture and state normalisation) instead
    of starting from random weights: new scenes are added without forgetting the old ones quickly.
    """
    run = TrainingRun(out_dir, device, CONFIG_FILE, CHECKPOINT_FORMAT)
    device = run.device
    split = split_episodes(
        [(e.episode_id, " ".join((e.skill, *e.arguments))) for e in dataset.episodes],
        settings.seed,
        settings.held_out_fraction,
    )
    if not split.train or not split.calibration or not split.test:
        raise ValueError(
            f"need training, calibration and test episodes; got {len(split.train)}/{len(split.calibration)}/"
            f"{len(split.test)} from {len(dataset.episodes)} episodes (at least 3 of one skill)"
        )
    by_id = {e.episode_id: e for e in dataset.episodes}
    parts = {name: concatenate([by_id[i] for i in ids], dataset.atoms) for name, ids in asdict(split).items()}
    train = parts["train"]
    if init_from is not None:
        model_config = init_from.model.config
        if tuple(model_config.atoms) != tuple(dataset.atoms) or tuple(model_config.image_size) != tuple(
            dataset.image_size
        ):
            raise ValueError(
                f"cannot fine-tune {init_from.path}: it was trained for {len(model_config.atoms)} atoms at "
                f"{model_config.image_size}, the data has {len(dataset.atoms)} atoms at {dataset.image_size}"
            )
    else:
        model_config = ClassifierConfig(
            atoms=dataset.atoms, image_size=dataset.image_size, **dict(model_options or {})
        )
    run_fingerprint = fingerprint(
        {
            "init_from": str(init_from.path) if init_from is not None else None,
            "model": model_config.to_dict(),
            "settings": {**asdict(settings), "epochs": None},
            "split": asdict(split),
            "fps": dataset.fps,
        }
    )

    torch.manual_seed(settings.seed)
    if init_from is not None:
        model = init_from.model
    else:
        model = PredicateClassifier(model_config)
        model.set_state_normalisation(train.state.mean(0), train.state.std(0))
    model.to(device)
    optimizer = run.optimizer(model, settings)
    held_out = concatenate([by_id[i] for i in split.calibration + split.test], dataset.atoms)

    def loss_fn(rows: np.ndarray, generator: torch.Generator, _rng: np.random.Generator) -> torch.Tensor:
        images, state, labels, known = _batch(train, rows, model_config.cameras, device)
        return _masked_bce(model(images, state, generator=generator, augment=True), labels, known)

    def evaluate_fn() -> dict[str, float]:
        probs, held_loss = evaluate(model, held_out)
        mean_auc, min_auc = _auc_summary(dataset.atoms, probs, held_out)
        return {"held_out_loss": held_loss, "held_out_mean_auc": mean_auc, "held_out_min_auc": min_auc}

    history = run.train(
        model, optimizer, len(train), settings, loss_fn, evaluate_fn, run_fingerprint, resume, progress
    )

    cal_probs, _ = evaluate(model, parts["calibration"])
    test_probs, _ = evaluate(model, parts["test"])
    thresholds, per_atom = calibrate(
        dataset.atoms,
        (cal_probs, parts["calibration"]),
        (test_probs, parts["test"]),
        settings.max_fpr,
        settings.min_tpr,
    )
    metrics = {
        "max_fpr": settings.max_fpr,
        "atoms": per_atom,
        "samples": {name: len(a) for name, a in parts.items()},
    }
    data = {
        "root": dataset.root,
        "fps": dataset.fps,
        "image_size": list(dataset.image_size),
        "episodes": asdict(split),
    }
    record = run.record(
        "meta_robot.classifier_run/1", command, data, model_config.to_dict(), settings, history, metrics
    )
    weights = save_classifier(
        model,
        run.out_dir / WEIGHTS_FILE,
        thresholds,
        extra={
            "software": record["software"],
            "command": record["command"],
            "data_root": dataset.root,
            "fps": dataset.fps,
        },
    )
    run.finish(record, CURVE_PANELS)
    return TrainResult(run.out_dir, weights, metrics, thresholds, history)


def train_classifier(
    root: str | Path,
    out_dir: str | Path,
    epochs: int = 10,
    seed: int = 0,
    *,
    batch_size: int = 64,
    lr: float = 1e-3,
    held_out_fraction: float = 0.3,
    max_fpr: float = 0.02,
    min_tpr: float | None = 0.9,
    fps: float = CLASSIFIER_FPS,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    skills: Iterable[str] | None = None,
    model_options: Mapping[str, Any] | None = None,
    resume: bool = True,
    device: str | None = None,
    progress: bool = True,
    command: str | None = None,
    num_threads: int | None = None,
    init_from: str | None = None,
) -> TrainResult:
    """``meta-robot train classifier``: load (and cache) the episodes under ``root``, train, calibrate,
    and write the outputs to ``out_dir`` (see the module docstring). Reruns resume from
    ``out_dir/checkpoint.safetensors`` unless ``resume`` is False. ``num_threads`` sets torch's CPU
    threads (1 is fastest on a machine busy with other work). ``init_from`` (a manifest name or a
    path) fine-tunes that classifier."""
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    from meta_robot.engine.store import is_engine_dataset

    if is_engine_dataset(root):  # labelled from the engine's stored simulator states
        from meta_robot.engine.predicates import engine_predicate_dataset

        dataset = engine_predicate_dataset(root, tuple(image_size), fps=fps, progress=progress)
    else:
        dataset = load_dataset(root, fps=fps, image_size=tuple(image_size), skills=skills, progress=progress)
    settings = TrainSettings(
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        held_out_fraction=held_out_fraction,
        max_fpr=max_fpr,
    )
    return fit(
        dataset,
        out_dir,
        settings,
        model_options,
        resume=resume,
        device=device,
        progress=progress,
        command=command,
        init_from=load_classifier(resolve_checkpoint(init_from, "classifier")) if init_from else None,
    )
