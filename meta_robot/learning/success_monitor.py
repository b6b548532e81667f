"""Classifier output -> evidence the executive can act on: the latest observation, per-atom decisions,
and a debounced success verdict for the active skill.

Pure Python (no ROS), so the classifier node stays a thin adapter and the decision logic is tested
without processes. One frame's probabilities are noisy near a threshold; the executive must not
declare a skill done on a single lucky frame, so success needs every effect literal to hold on
``debounce_frames`` consecutive frames, and any frame on which one fails starts the count again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meta_robot.core.observation import CAMERAS, NUM_JOINTS, state_vector
from meta_robot.learning.classifier import LoadedClassifier, effects_probability, literal_holds
from meta_robot.learning.predicate_data import atom_name
from meta_robot.skills.registry import GroundSkill, Registry


@dataclass(frozen=True)
class Observation:
    """What the classifier sees at one camera frame: every camera's image and the 15-d state."""

    images: dict[str, np.ndarray]  # camera -> RGB uint8 (H, W, 3)
    state: np.ndarray  # (15,) float32 in the schema's order (core.observation.STATE_NAMES)
    stamp_ns: int  # stamp of the frame of ``stamp_camera``


class ObservationBuffer:
    """Latest value of every input stream; thread-safe, since ROS callbacks fill it while inference
    reads it. An observation exists only once every stream has spoken (the model needs them all).

    Images are kept as they arrived (e.g. a sensor_msgs/Image) and decoded by :meth:`observation`,
    so frames that inference never uses (a wrist camera faster than the front one, frames dropped
    while the model was busy) cost nothing.
    """

    def __init__(
        self, cameras: Sequence[str] = CAMERAS, stamp_camera: str = "", needs_state: bool = True
    ) -> None:
        self.cameras = tuple(cameras)
        self.stamp_camera = stamp_camera or self.cameras[0]
        if self.stamp_camera not in self.cameras:
            raise ValueError(f"stamp camera {self.stamp_camera!r} is not one of {list(self.cameras)}")
        self.needs_state = needs_state
        self._lock = threading.Lock()
        self._images: dict[str, tuple[object, int]] = {}
        self._joints: np.ndarray | None = None
        self._gripper: float | None = None
        self._pose: np.ndarray | None = None

    def set_image(self, camera: str, image: object, stamp_ns: int) -> None:
        if camera not in self.cameras:
            raise ValueError(f"unknown camera {camera!r}; expected one of {list(self.cameras)}")
        with self._lock:
            self._images[camera] = (image, int(stamp_ns))

    def set_joints(self, positions: Sequence[float]) -> None:
        """The arm's joint positions; finger joints, if any, follow the first 7 and are ignored (as
        the dataset does)."""
        positions = np.asarray(positions, dtype=np.float32)
        if len(positions) < NUM_JOINTS:
            raise ValueError(f"joint_states has {len(positions)} positions, expected at least {NUM_JOINTS}")
        with self._lock:
            self._joints = positions[:NUM_JOINTS].copy()

    def set_gripper(self, width: float) -> None:
        with self._lock:
            self._gripper = float(width)

    def set_pose(self, position: Sequence[float], quaternion_xyzw: Sequence[float]) -> None:
        pose = np.asarray([*position, *quaternion_xyzw], dtype=np.float32)
        if pose.shape != (7,):
            raise ValueError("a TCP pose is 3 position and 4 quaternion values")
        with self._lock:
            self._pose = pose

    def missing(self) -> list[str]:
        """Streams not heard yet (for a log that says what the node is waiting for)."""
        with self._lock:
            names = [c for c in self.cameras if c not in self._images]
            if self.needs_state:
                streams = (("joints", self._joints), ("gripper", self._gripper), ("ee_pose", self._pose))
                names += [name for name, value in streams if value is None]
        return names

    def observation(self, decode: Callable[[Any], np.ndarray] | None = None) -> Observation | None:
        """The latest images (through ``decode``, which may raise ValueError for a bad image) and
        state, stamped with ``stamp_camera``'s frame; None until every stream has spoken."""
        if self.missing():
            return None
        with self._lock:
            raw = {c: self._images[c][0] for c in self.cameras}
            stamp = self._images[self.stamp_camera][1]
            if self.needs_state:
                assert self._joints is not None and self._gripper is not None and self._pose is not None
                state = state_vector(self._joints, self._gripper, self._pose[:3], self._pose[3:])
            else:
                state = np.zeros(0, np.float32)
        images = {c: (decode(v) if decode is not None else np.asarray(v)) for c, v in raw.items()}
        return Observation(images, state, stamp)


@dataclass(frozen=True)
class AtomEstimates:
    """Every atom's probability, calibrated threshold (NaN: none) and decision, in model order."""

    atoms: tuple[str, ...]
    probabilities: tuple[float, ...]
    thresholds: tuple[float, ...]
    holds: tuple[bool, ...]


def estimate_atoms(
    probabilities: Mapping[str, float], thresholds: Mapping[str, float | None], atoms: Sequence[str]
) -> AtomEstimates:
    """Decide each atom against its calibrated threshold; an uncalibrated atom never holds (claiming
    it would be an unmeasured risk, as in :func:`literal_holds`)."""
    values = tuple(float(probabilities[a]) for a in atoms)
    limits = tuple(_threshold(thresholds.get(a)) for a in atoms)
    holds = tuple(not math.isnan(t) and p >= t for p, t in zip(values, limits, strict=True))
    return AtomEstimates(tuple(atoms), values, limits, holds)


def _threshold(value: float | None) -> float:
    return math.nan if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class SuccessDecision:
    """The verdict on the active skill after one frame."""

    skill: str
    arguments: tuple[str, ...]
    success_probability: float  # effects_probability: the least likely effect literal
    holds: bool  # every effect literal holds on this frame
    consecutive: int  # frames in a row (this one included) on which they all held
    succeeded: bool  # consecutive >= debounce_frames


class SuccessMonitor:
    """Debounced success of the active skill from per-frame atom probabilities.

    ``set_skill`` grounds the skill with the registry (its errors name an unknown skill or argument)
    and refuses a skill whose effects mention an atom the classifier has no head for, so a mismatch
    between model and registry shows at the start of a skill, not as a silent "never succeeds".
    """

    def __init__(self, classifier: LoadedClassifier, registry: Registry, debounce_frames: int = 3) -> None:
        if debounce_frames < 1:
            raise ValueError(f"debounce_frames must be >= 1, got {debounce_frames}")
        self.classifier = classifier
        self.registry = registry
        self.debounce_frames = int(debounce_frames)
        self.atoms: tuple[str, ...] = tuple(classifier.model.config.atoms)
        self.thresholds: dict[str, float | None] = {
            a: (None if math.isnan(t := _threshold(classifier.thresholds.get(a))) else t) for a in self.atoms
        }
        self._skill: GroundSkill | None = None
        self._consecutive = 0

    @property
    def skill(self) -> GroundSkill | None:
        """The active ground skill, or None."""
        return self._skill

    def set_skill(self, name: str, arguments: Sequence[str] = ()) -> GroundSkill:
        """Make ``name(arguments)`` the active skill. Setting the skill that is already active keeps
        its count (a status repeated every control step must not restart the debounce)."""
        skill = self.registry.ground(name, list(arguments))  # RegistryError (a ValueError) names it
        current = self._skill
        if current is not None and (current.name, current.arguments) == (skill.name, skill.arguments):
            return current
        unknown = sorted({atom_name(lit.atom) for lit in skill.effects} - set(self.atoms))
        if unknown:
            source = self.classifier.path or "the classifier"
            raise ValueError(
                f"skill {skill}: effect atoms {', '.join(unknown)} are not predicted by {source} "
                f"(it has {len(self.atoms)} atoms); retrain it with this registry"
            )
        self._skill = skill
        self._consecutive = 0
        return skill

    def clear(self) -> None:
        """No active skill (it finished, failed or was preempted)."""
        self._skill = None
        self._consecutive = 0

    def update(self, probabilities: Mapping[str, float]) -> SuccessDecision | None:
        """Count one frame; None when no skill is active."""
        skill = self._skill
        if skill is None:
            return None
        holds = all(literal_holds(probabilities, self.thresholds, lit) for lit in skill.effects)
        self._consecutive = self._consecutive + 1 if holds else 0
        return SuccessDecision(
            skill.name,
            skill.arguments,
            effects_probability(probabilities, skill.effects),
            holds,
            self._consecutive,
            self._consecutive >= self.debounce_frames,
        )
