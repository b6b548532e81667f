"""Goal-conditioned behaviour cloning: one image policy for every skill of the registry.

The network sees the front and wrist images, the proprioceptive state, the skill and its arguments
(learned embeddings) and, when given, a goal image (the front view of the desired outcome, encoded by
the front camera's encoder). It predicts a chunk of the next ``chunk`` TCP targets *relative to the
current TCP pose* (position offset and rotation vector) plus gripper widths, normalised with the
training data's statistics, which are stored with the weights. At run time the overlapping chunks
are blended by temporal ensembling (ACT): the per-episode state keeps every chunk still covering
the current step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from meta_robot.core.geometry import (
    quat_conjugate,
    quat_multiply,
    quat_normalize,
    quat_to_rotvec,
    rotvec_to_quat,
)
from meta_robot.dataset.torch_dataset import PAD_ARGUMENT as NO_ARGUMENT
from meta_robot.learning.checkpoints import CheckpointError, atomic_save
from meta_robot.learning.classifier import prepare_image
from meta_robot.learning.nets import ConvEncoder, random_shift
from meta_robot.learning.policy import (
    STATE_DIM,
    Action,
    EpisodeState,
    Observation,
    Policy,
    PolicyError,
    SkillRequest,
    register_policy_kind,
)

FORMAT = "meta_robot.policy.bc/1"
WEIGHTS_FILE = "policy.safetensors"
ACTION_DIM = 7  # position offset (3), rotation vector (3), gripper width (1)


@dataclass(frozen=True)
class BCConfig:
    """Shape of the network and what it was trained to serve."""

    skills: tuple[str, ...]
    vocabulary: tuple[str, ...]  # argument names; index 0 is NO_ARGUMENT (padding)
    max_arguments: int = 2
    image_size: tuple[int, int] = (64, 64)
    cameras: tuple[str, ...] = ("front", "wrist")
    goal_camera: str = "front"
    chunk: int = 10
    channels: int = 32
    pooling: str = "flatten"  # or "spatial_softmax" (image keypoints)
    feature_dim: int = 128
    embed_dim: int = 32
    hidden: int = 512
    dropout: float = 0.1
    shift: int = 4
    fps: float = 10.0  # control rate the chunk's steps are spaced at
    gripper_widths: tuple[float, float] = (0.0, 0.08)  # the closed and open widths demonstrated
    # Size of the true scene state the image features also learn to predict during training (an
    # auxiliary head, unused when serving); 0: none. See meta_robot.engine.privileged.
    aux_dim: int = 0

    def __post_init__(self) -> None:
        for name in ("skills", "vocabulary", "cameras", "image_size", "gripper_widths"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.skills:
            raise ValueError("a policy needs at least one skill")
        if not self.vocabulary or self.vocabulary[0] != NO_ARGUMENT:
            raise ValueError(f"the argument vocabulary must start with {NO_ARGUMENT!r}")
        if self.goal_camera not in self.cameras:
            raise ValueError(f"goal_camera {self.goal_camera!r} is not one of the cameras {self.cameras}")
        if self.chunk < 1 or self.max_arguments < 0 or not self.fps > 0 or self.aux_dim < 0:
            raise ValueError("chunk must be >= 1, max_arguments >= 0, fps > 0 and aux_dim >= 0")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BCConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown policy config keys {sorted(unknown)}")
        return cls(**data)


class BCNetwork(nn.Module):
    """Images + state + skill + arguments (+ goal image) -> a normalised action chunk."""

    def __init__(self, config: BCConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoders = nn.ModuleDict(
            {cam: ConvEncoder(c.image_size, c.channels, c.feature_dim, c.pooling) for cam in c.cameras}
        )
        self.skill_embedding = nn.Embedding(len(c.skills), c.embed_dim)
        self.argument_embedding = nn.Embedding(len(c.vocabulary), c.embed_dim, padding_idx=0)
        self.state_net = nn.Sequential(nn.Linear(STATE_DIM, 64), nn.ReLU(inplace=True))
        width = c.feature_dim * (len(c.cameras) + 1) + c.embed_dim * (1 + c.max_arguments) + 64 + 1
        self.trunk = nn.Sequential(
            nn.Linear(width, c.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(c.dropout),
            nn.Linear(c.hidden, c.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(c.hidden, c.chunk * ACTION_DIM),
        )
        normalised = [("state", STATE_DIM), ("action", ACTION_DIM)]
        if c.aux_dim:
            self.aux_head = nn.Linear(c.feature_dim * len(c.cameras), c.aux_dim)
            normalised.append(("aux", c.aux_dim))
        for name, size in normalised:
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))

    def set_normalisation(self, state: np.ndarray, action: np.ndarray, aux: np.ndarray | None = None) -> None:
        """Store the training data's statistics (std floored so constant inputs stay finite)."""
        for name, values in (("state", state), ("action", action), ("aux", aux)):
            if values is None or not hasattr(self, f"{name}_mean"):
                continue
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(values.mean(0), dtype=torch.float32))
            std = np.maximum(values.std(0), 1e-3)
            getattr(self, f"{name}_std").copy_(torch.as_tensor(std, dtype=torch.float32))

    def _encode(self, camera: str, images: torch.Tensor, augment: bool, generator) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        if augment:
            x = random_shift(x, self.config.shift, generator)
        return self.encoders[camera](x)

    def forward(
        self,
        images: Mapping[str, torch.Tensor],
        state: torch.Tensor,
        skill: torch.Tensor,
        arguments: torch.Tensor,
        goal: torch.Tensor | None = None,
        has_goal: torch.Tensor | None = None,
        augment: bool = False,
        generator: torch.Generator | None = None,
        with_aux: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``images`` uint8 (B, H, W, 3) per camera; ``state`` raw (B, 15); ``skill`` (B,) and
        ``arguments`` (B, max_arguments) indices; ``goal`` uint8 images (B, H, W, 3) used where
        ``has_goal`` (B,) is true. Returns (B, chunk, 7) normalised actions, and with ``with_aux``
        also the (B, aux_dim) normalised scene state predicted from the camera features."""
        c = self.config
        b = state.shape[0]
        features = [self._encode(cam, images[cam], augment, generator) for cam in c.cameras]
        aux = self.aux_head(torch.cat(features, dim=1)) if with_aux and c.aux_dim else None
        goal_features = torch.zeros(b, c.feature_dim, device=state.device)
        flag = torch.zeros(b, 1, device=state.device)
        if goal is not None and has_goal is not None and bool(has_goal.any()):
            rows = has_goal.nonzero(as_tuple=True)[0]
            encoded = self._encode(c.goal_camera, goal[rows], augment, generator)
            goal_features = goal_features.index_put((rows,), encoded)
            flag = has_goal.float().unsqueeze(1)
        features += [
            goal_features,
            flag,
            self.skill_embedding(skill),
            self.argument_embedding(arguments).flatten(1),
            self.state_net((state.float() - self.state_mean) / self.state_std),
        ]
        actions = self.trunk(torch.cat(features, dim=1)).view(b, c.chunk, ACTION_DIM)
        if not with_aux:
            return actions
        if aux is None:
            raise ValueError("this network has no auxiliary head (aux_dim = 0)")
        return actions, aux


# --- action encoding ------------------------------------------------------------------------------
def relative_actions(state: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Absolute targets (K, 8: position, xyzw, width) -> (K, 7) relative to the TCP in ``state``."""
    position, orientation = state[8:11].astype(np.float64), quat_normalize(state[11:15].astype(np.float64))
    inverse = quat_conjugate(orientation)
    out = np.empty((len(targets), ACTION_DIM), dtype=np.float32)
    for k, target in enumerate(targets):
        out[k, :3] = target[:3] - position
        out[k, 3:6] = quat_to_rotvec(quat_multiply(quat_normalize(target[3:7]), inverse))
        out[k, 6] = target[7]
    return out


def absolute_action(state: np.ndarray, relative: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Inverse of :func:`relative_actions` for one step: (position, quaternion xyzw, width)."""
    position = state[8:11].astype(np.float64) + relative[:3]
    orientation = quat_normalize(
        quat_multiply(rotvec_to_quat(relative[3:6]), state[11:15].astype(np.float64))
    )
    return position, orientation, float(relative[6])


# --- serving --------------------------------------------------------------------------------------
@dataclass
class ChunkBuffer:
    """The absolute targets of every chunk predicted so far that still reaches the current step."""

    chunks: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (start step, (K, 8))

    def add(self, step: int, targets: np.ndarray) -> None:
        self.chunks.append((step, targets))
        self.chunks = [(s, t) for s, t in self.chunks if s + len(t) > step]

    def blend(self, step: int, decay: float) -> np.ndarray:
        """ACT's temporal ensemble for ``step``: weights exp(-decay * i), i = 0 for the oldest chunk."""
        entries = [t[step - s] for s, t in self.chunks if 0 <= step - s < len(t)]
        weights = np.exp(-decay * np.arange(len(entries)))
        weights /= weights.sum()
        stacked = np.stack(entries)
        position = (weights[:, None] * stacked[:, :3]).sum(0)
        quats = stacked[:, 3:7] * np.sign(stacked[:, 3:7] @ stacked[0, 3:7])[:, None]
        orientation = quat_normalize((weights[:, None] * quats).sum(0))
        width = float((weights * stacked[:, 7]).sum())
        return np.concatenate([position, orientation, [width]])


class BCPolicy(Policy):
    """Serves a :class:`BCNetwork`; per-episode state is the chunk buffer."""

    kind = "goal_conditioned_bc"

    def __init__(
        self,
        network: BCNetwork,
        device: torch.device,
        info: Mapping[str, Any] | None = None,
        ensemble_decay: float = 0.1,
    ) -> None:
        self.network = network.to(device).eval()
        self.config = network.config
        self.skills = self.config.skills
        self.cameras = self.config.cameras
        self.image_size = self.config.image_size
        self.device = device
        self.info = dict(info or {})
        self.ensemble_decay = ensemble_decay

    def example_request(self) -> SkillRequest:
        from meta_robot.skills.registry import load_registry

        registry = load_registry()
        for skill in self.skills:
            groundings = registry.groundings(skill) if skill in registry.skills else []
            for ground in groundings:
                if all(a in self.config.vocabulary for a in ground.arguments):
                    return SkillRequest(skill, tuple(ground.arguments))
        return SkillRequest(self.skills[0])

    def start(self, request: SkillRequest) -> EpisodeState:
        c = self.config
        if request.skill not in c.skills:
            raise PolicyError(f"unknown skill {request.skill!r}: this policy serves {list(c.skills)}")
        if len(request.arguments) > c.max_arguments:
            raise PolicyError(
                f"{request.skill}: {len(request.arguments)} arguments, "
                f"the policy takes at most {c.max_arguments}"
            )
        unknown = [a for a in request.arguments if a not in c.vocabulary[1:]]
        if unknown:
            raise PolicyError(
                f"{request.skill}: unknown arguments {unknown} (known: {list(c.vocabulary[1:])})"
            )
        if request.goal_image is not None:
            try:
                prepare_image(request.goal_image, c.image_size, "goal image")
            except ValueError as exc:
                raise PolicyError(str(exc)) from exc
        state = EpisodeState(request)
        state.extra["buffer"] = ChunkBuffer()
        return state

    def network_inputs(self, episodes: Sequence[EpisodeState], observations: Sequence[Observation]):
        """The network's batched input tensors, on its device (images resized to the model's size)."""
        c = self.config
        images = {
            cam: torch.from_numpy(
                np.stack([prepare_image(o.images[cam], c.image_size, cam) for o in observations])
            )
            for cam in c.cameras
        }
        state = torch.from_numpy(np.stack([np.asarray(o.state, np.float32) for o in observations]))
        skill = torch.tensor([c.skills.index(e.request.skill) for e in episodes])
        arguments = torch.zeros(len(episodes), c.max_arguments, dtype=torch.long)
        for i, e in enumerate(episodes):
            for j, name in enumerate(e.request.arguments):
                arguments[i, j] = c.vocabulary.index(name)
        has_goal = torch.tensor([e.request.goal_image is not None for e in episodes])
        goal = None
        if bool(has_goal.any()):
            blank = np.zeros((*c.image_size, 3), np.uint8)
            goal = torch.from_numpy(
                np.stack(
                    [
                        blank
                        if e.request.goal_image is None
                        else prepare_image(e.request.goal_image, c.image_size)
                        for e in episodes
                    ]
                )
            )
        to = self.device
        return (
            {k: v.to(to) for k, v in images.items()},
            state.to(to),
            skill.to(to),
            arguments.to(to),
            None if goal is None else goal.to(to),
            has_goal.to(to),
        )

    @torch.no_grad()
    def predict_chunks(
        self, episodes: Sequence[EpisodeState], observations: Sequence[Observation]
    ) -> np.ndarray:
        """(B, chunk, 7) relative actions, de-normalised."""
        net = self.network
        out = net(*self.network_inputs(episodes, observations))
        return (out * net.action_std + net.action_mean).float().cpu().numpy()

    def act(self, episodes: Sequence[EpisodeState], observations: Sequence[Observation]) -> list[Action]:
        if len(episodes) != len(observations):
            raise PolicyError(f"{len(episodes)} episodes but {len(observations)} observations")
        for observation in observations:
            self.check_observation(observation)
        chunks = self.predict_chunks(episodes, observations)
        closed, opened = self.config.gripper_widths
        actions = []
        for episode, observation, chunk in zip(episodes, observations, chunks, strict=True):
            state = np.asarray(observation.state, np.float64)
            targets = np.array([np.concatenate([*absolute_action(state, r)[:2], [r[6]]]) for r in chunk])
            buffer: ChunkBuffer = episode.extra["buffer"]
            buffer.add(episode.step, targets)
            blended = buffer.blend(episode.step, self.ensemble_decay)
            # The demonstrations only ever command open or closed: a blend in between would half-grasp.
            width = opened if blended[7] > 0.5 * (closed + opened) else closed
            actions.append(Action(blended[:3], blended[3:7], width))
            episode.step += 1
        return actions


def save_bc_policy(network: BCNetwork, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Weights + config (+ JSON-able provenance) in one safetensors file."""
    path = Path(path)
    metadata = {
        "format": FORMAT,
        "config": json.dumps(network.config.to_dict()),
        "extra": json.dumps(dict(extra or {}), default=str),
    }
    atomic_save(network.state_dict(), path, metadata)
    return path


def _load(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str], device: torch.device
) -> Policy:
    try:
        config = BCConfig.from_dict(json.loads(metadata["config"]))
        extra = json.loads(metadata.get("extra", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: unreadable policy config ({exc})") from exc
    network = BCNetwork(config)
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not fit the stored config ({exc})") from exc
    bad = [
        name
        for name, t in network.state_dict().items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:
        raise CheckpointError(f"checkpoint {path}: non-finite values in {bad[:3]}")
    return BCPolicy(network, device, info={"path": str(path), **extra})


register_policy_kind(FORMAT, _load)
