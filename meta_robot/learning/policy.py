"""The one interface every skill policy serves through: observation in, action out, episode state inside.

The policy server knows nothing of networks. It asks a :class:`Policy` to :meth:`~Policy.start` an
episode for a skill request (which returns the policy's own per-episode state: an action-chunk
buffer for behaviour cloning, a latent belief for MELD, a warm-started plan for EMBR's MPC) and then
calls :meth:`~Policy.act` once per control step with the episodes that are running, batched. A new
kind of policy registers a loader for its checkpoint format with :func:`register_policy_kind`, and
:func:`load_policy` picks it by the format stored in the checkpoint.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

# The schema's observation and state size, importable from here as before.
from meta_robot.core.observation import IMAGE_SIZE
from meta_robot.core.observation import STATE_DIM as STATE_DIM
from meta_robot.core.observation import Observation as Observation
from meta_robot.learning.checkpoints import CheckpointError, read_safetensors


class PolicyError(ValueError):
    """A request or an observation the policy cannot serve; the message says what and why."""


@dataclass(frozen=True)
class SkillRequest:
    """What to do: a registry skill with its PDDL arguments, and optionally a goal image (RGB uint8
    front-camera view of the desired outcome) for policies that can use one."""

    skill: str
    arguments: tuple[str, ...] = ()
    goal_image: np.ndarray | None = None


@dataclass(frozen=True)
class Action:
    """A TCP target in the robot base frame (position m, orientation quaternion xyzw) and a gripper
    width (m): what the policy server sends as an absolute ArmCommand."""

    position: np.ndarray
    orientation: np.ndarray
    gripper_width: float

    def is_finite(self) -> bool:
        return bool(
            np.all(np.isfinite(self.position))
            and np.all(np.isfinite(self.orientation))
            and math.isfinite(self.gripper_width)
        )


@dataclass
class EpisodeState:
    """Per-episode state a policy keeps between steps; subclasses add what they need."""

    request: SkillRequest
    step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Policy(ABC):
    """A trained skill policy. Subclasses set :attr:`kind`, :attr:`skills`, :attr:`cameras` and
    :attr:`image_size` and implement :meth:`start` and :meth:`act`."""

    kind: str = ""
    skills: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = IMAGE_SIZE
    device: torch.device = torch.device("cpu")
    info: Mapping[str, Any] = {}

    @abstractmethod
    def start(self, request: SkillRequest) -> EpisodeState:
        """Begin an episode; raises :class:`PolicyError` for a skill or argument it cannot serve."""

    @abstractmethod
    def act(self, episodes: Sequence[EpisodeState], observations: Sequence[Observation]) -> list[Action]:
        """One control step for each running episode (batched: one forward pass for all)."""

    def check_observation(self, observation: Observation) -> None:
        """Refuse, with a message saying what was expected, images or state the model cannot use."""
        for camera in self.cameras:
            image = observation.images.get(camera)
            if image is None:
                raise PolicyError(f"no {camera!r} image (the policy uses cameras {list(self.cameras)})")
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise PolicyError(
                    f"{camera} image: expected RGB uint8 of shape (H, W, 3), got {image.dtype} {image.shape}"
                )
        state = np.asarray(observation.state)
        if state.shape != (STATE_DIM,) or not np.all(np.isfinite(state)):
            raise PolicyError(f"state: expected {STATE_DIM} finite values, got shape {state.shape}")

    def warm_up(self, repeats: int = 3) -> None:
        """Run a few dummy steps so the first real one does not pay for allocation and kernel choice."""
        if not self.skills:
            return
        h, w = self.image_size
        observation = Observation(
            images={cam: np.zeros((h, w, 3), np.uint8) for cam in self.cameras},
            state=np.array([0.0] * 7 + [0.04, 0.4, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0], dtype=np.float32),
        )
        episode = self.start(self.example_request())
        for _ in range(repeats):
            self.act([episode], [observation])

    def example_request(self) -> SkillRequest:
        """A valid request for :meth:`warm_up`."""
        return SkillRequest(self.skills[0])


PolicyLoader = Callable[[Path, dict[str, torch.Tensor], dict[str, str], torch.device], Policy]
_KINDS: dict[str, PolicyLoader] = {}


def register_policy_kind(checkpoint_format: str, loader: PolicyLoader) -> None:
    """Make :func:`load_policy` read checkpoints whose metadata ``format`` is ``checkpoint_format``."""
    _KINDS[checkpoint_format] = loader


def load_policy(path: str | Path, device: str | torch.device | None = None) -> Policy:
    """Read a policy checkpoint (safetensors with a ``format`` in its metadata), or fail with a
    :class:`CheckpointError` naming the file: missing, corrupt, or of a kind nobody registered."""
    from meta_robot.learning import bc_policy  # noqa: F401  (registers the goal-conditioned BC kind)
    from meta_robot.learning.nets import select_device

    path = Path(path)
    tensors, metadata = read_safetensors(path)
    kind = metadata.get("format", "")
    loader = _KINDS.get(kind)
    if loader is None:
        raise CheckpointError(
            f"checkpoint {path}: format {kind!r} is not a policy this build knows ({sorted(_KINDS)})"
        )
    return loader(path, tensors, metadata, select_device(device))
