"""Predicate classifier: a small CNN over the front and wrist RGB images (plus proprioception) with one
sigmoid head per ground atom of the skill registry.

One network for all atoms: they share what there is to see (where the drawer, the hand and the objects
are), and the executive needs all of them at camera rate anyway. Weights are stored as safetensors
whose metadata holds the model config and the calibrated thresholds, so a single file is enough to
serve the model; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# The schema's state size and image preprocessing, importable from here as before.
from meta_robot.core.observation import CAMERAS, IMAGE_SIZE
from meta_robot.core.observation import STATE_DIM as STATE_DIM
from meta_robot.core.observation import prepare_image as prepare_image
from meta_robot.learning.checkpoints import CheckpointError, atomic_save, read_safetensors
from meta_robot.learning.nets import ConvEncoder, random_shift, select_device
from meta_robot.skills.registry import Literal

logger = logging.getLogger(__name__)

FORMAT = "meta_robot.classifier/1"
WEIGHTS_FILE = "classifier.safetensors"


@dataclass(frozen=True)
class ClassifierConfig:
    """Shape of the network. ``atoms`` are PDDL atoms like ``"(holding red_cube)"``, one head each."""

    atoms: tuple[str, ...]
    image_size: tuple[int, int] = IMAGE_SIZE  # (height, width) the images are resized to
    cameras: tuple[str, ...] = CAMERAS
    state_dim: int = STATE_DIM  # proprioception inputs; 0 = images only
    channels: int = 32  # conv width of the first layers (doubled in the last two)
    feature_dim: int = 128  # per-camera embedding
    hidden: int = 256
    dropout: float = 0.1
    shift: int = 4  # pixels of random-shift augmentation (training only)

    def __post_init__(self) -> None:
        object.__setattr__(self, "atoms", tuple(self.atoms))
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if not self.atoms:
            raise ValueError("a classifier needs at least one atom")
        if len(set(self.atoms)) != len(self.atoms):
            raise ValueError("duplicate atoms")
        if not self.cameras:
            raise ValueError("a classifier needs at least one camera")
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            raise ValueError(f"image_size must be (height, width) of at least 16, got {self.image_size}")
        if self.state_dim < 0 or self.channels < 1 or self.feature_dim < 1 or self.hidden < 1:
            raise ValueError("state_dim must be >= 0 and channels, feature_dim, hidden >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.shift < 0:
            raise ValueError(f"shift must be >= 0, got {self.shift}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassifierConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown classifier config keys {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class PredicateClassifier(nn.Module):
    """Images (+ proprioception) -> one logit per atom.

    ``forward`` takes images as uint8 (B, H, W, 3) tensors at ``config.image_size`` (what the dataset
    and the camera give) and the raw ``state`` (B, state_dim); normalisation of both is part of the
    model (the state's mean and std are buffers saved with the weights).
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict(
            {
                cam: ConvEncoder(config.image_size, config.channels, config.feature_dim)
                for cam in config.cameras
            }
        )
        width = config.feature_dim * len(config.cameras)
        if config.state_dim:
            self.state_net = nn.Sequential(nn.Linear(config.state_dim, 64), nn.ReLU(inplace=True))
            width += 64
        self.register_buffer("state_mean", torch.zeros(max(config.state_dim, 1)))
        self.register_buffer("state_std", torch.ones(max(config.state_dim, 1)))
        self.head = nn.Sequential(
            nn.Linear(width, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, len(config.atoms)),
        )

    def set_state_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store the training set's state statistics (std floored so constant inputs stay finite)."""
        if not self.config.state_dim:
            return
        self.state_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.state_std.copy_(torch.as_tensor(np.maximum(std, 1e-3), dtype=torch.float32))

    def forward(
        self,
        images: Mapping[str, torch.Tensor],
        state: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        augment: bool = False,
    ) -> torch.Tensor:
        features = []
        for cam, encoder in self.encoders.items():
            x = images[cam].permute(0, 3, 1, 2).float() / 255.0 - 0.5
            if augment:
                x = random_shift(x, self.config.shift, generator)
            features.append(encoder(x))
        if self.config.state_dim:
            if state is None:
                raise ValueError("this classifier needs the proprioceptive state")
            features.append(self.state_net((state.float() - self.state_mean) / self.state_std))
        return self.head(torch.cat(features, dim=1))


# --- checkpoints ----------------------------------------------------------------------------------
def save_classifier(
    model: PredicateClassifier,
    path: str | Path,
    thresholds: Mapping[str, float | None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Weights + config (+ calibrated thresholds, + any JSON-able ``extra``) in one safetensors file."""
    path = Path(path)
    metadata = {
        "format": FORMAT,
        "config": json.dumps(model.config.to_dict()),
        "thresholds": json.dumps({k: _json_threshold(v) for k, v in (thresholds or {}).items()}),
        "extra": json.dumps(dict(extra or {}), default=str),
    }
    atomic_save(model.state_dict(), path, metadata)
    return path


def _json_threshold(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class LoadedClassifier:
    """A model read back from disk, with the thresholds it was calibrated with."""

    model: PredicateClassifier
    thresholds: dict[str, float | None]
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def load_classifier(path: str | Path, device: str | torch.device | None = None) -> LoadedClassifier:
    """Read a classifier saved by :func:`save_classifier` (a file, or a folder holding
    ``classifier.safetensors``). Raises :class:`CheckpointError` for a missing or corrupt file, a
    foreign format, or weights that do not fit the stored config."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path}: format {metadata.get('format')!r}, expected {FORMAT!r} "
            "(not a predicate classifier)"
        )
    try:
        config = ClassifierConfig.from_dict(json.loads(metadata["config"]))
        thresholds = json.loads(metadata.get("thresholds", "{}"))
        extra = json.loads(metadata.get("extra", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: unreadable config ({exc})") from exc
    model = PredicateClassifier(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not fit the stored config ({exc})") from exc
    model.to(select_device(device)).eval()
    return LoadedClassifier(model, thresholds, extra, path)


# --- inference -------------------------------------------------------------------------------------
@torch.no_grad()
def predict_probabilities(
    model: PredicateClassifier,
    images: Mapping[str, np.ndarray],
    state: np.ndarray | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Probabilities (N, A) for batches of uint8 images (N, H, W, 3) at the model's image size."""
    model.eval()
    device = next(model.parameters()).device
    n = len(next(iter(images.values())))
    out = []
    for start in range(0, n, batch_size):
        batch = {
            cam: torch.from_numpy(np.ascontiguousarray(images[cam][start : start + batch_size])).to(device)
            for cam in model.config.cameras
        }
        s = None if state is None else torch.from_numpy(state[start : start + batch_size]).to(device)
        out.append(torch.sigmoid(model(batch, s)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.config.atoms)), np.float32)


def predict_atoms(
    loaded: LoadedClassifier, images: Mapping[str, np.ndarray], state: Sequence[float] | None = None
) -> dict[str, float]:
    """Probability of every atom for one observation (images at any size, RGB uint8)."""
    config = loaded.model.config
    missing = [cam for cam in config.cameras if cam not in images]
    if missing:
        raise ValueError(f"missing camera images {missing} (the classifier uses {list(config.cameras)})")
    batch = {cam: prepare_image(images[cam], config.image_size, cam)[None] for cam in config.cameras}
    s = None
    if config.state_dim:
        if state is None or len(state) != config.state_dim:
            raise ValueError(f"expected a state of {config.state_dim} values")
        s = np.asarray(state, dtype=np.float32)[None]
    probs = predict_probabilities(loaded.model, batch, s)[0]
    return dict(zip(config.atoms, (float(p) for p in probs), strict=True))


def literal_holds(
    probabilities: Mapping[str, float], thresholds: Mapping[str, float | None], literal: Literal
) -> bool:
    """Decide a literal from atom probabilities and calibrated thresholds. A literal whose atom has no
    calibrated threshold never holds, negated or not (claiming it would be an unmeasured risk)."""
    name = "(" + " ".join(literal.atom) + ")"
    threshold = thresholds.get(name)
    if threshold is None:
        return False
    return (probabilities[name] >= threshold) != literal.negated


def effects_probability(probabilities: Mapping[str, float], literals: Sequence[Literal]) -> float:
    """A skill's success score: the least likely of its effect literals (p, or 1 - p when negated)."""
    values = []
    for literal in literals:
        p = probabilities["(" + " ".join(literal.atom) + ")"]
        values.append(1.0 - p if literal.negated else p)
    return float(min(values)) if values else 1.0
