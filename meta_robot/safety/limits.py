"""The limits the safety layer enforces, one dataclass checked when it is built.

The same limits guard the real arm and the simulator; they are node parameters (config/*.yaml),
with the defaults below chosen for a Franka on a desk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from meta_robot.core.arm import GRIPPER_MAX_WIDTH


@dataclass(frozen=True)
class SafetyLimits:
    """Workspace, speed, step, gripper, freshness and force limits. Units: m, rad, s, N."""

    base_frame: str = field(
        default="panda_link0", metadata={"doc": "commands must be expressed in this frame"}
    )
    workspace_min: tuple[float, float, float] = field(
        default=(0.25, -0.45, 0.005), metadata={"doc": "m, TCP box lower corner"}
    )
    workspace_max: tuple[float, float, float] = field(
        default=(0.75, 0.45, 0.65), metadata={"doc": "m, TCP box upper corner"}
    )
    max_linear_speed: float = field(default=0.25, metadata={"doc": "m/s, of the setpoint sent to the driver"})
    max_angular_speed: float = field(
        default=1.0, metadata={"doc": "rad/s, of the setpoint sent to the driver"}
    )
    max_step: float = field(
        default=0.10, metadata={"doc": "m, a command's target may be at most this far from the setpoint"}
    )
    max_rotation_step: float = field(default=0.6, metadata={"doc": "rad, likewise for orientation"})
    gripper_min_width: float = field(default=0.0, metadata={"doc": "m"})
    gripper_max_width: float = field(default=GRIPPER_MAX_WIDTH, metadata={"doc": "m"})
    max_command_age: float = field(default=0.25, metadata={"doc": "s, older commands are stale"})
    max_clock_skew: float = field(
        default=0.05, metadata={"doc": "s, commands stamped further in the future are refused"}
    )
    watchdog_timeout: float = field(
        default=0.1, metadata={"doc": "s, hold the arm when no command arrived for this long"}
    )
    max_contact_force: float = field(
        default=40.0, metadata={"doc": "N, hold the arm when the external force exceeds this"}
    )

    def __post_init__(self) -> None:
        lo = np.asarray(self.workspace_min, dtype=float)
        hi = np.asarray(self.workspace_max, dtype=float)
        if lo.shape != (3,) or hi.shape != (3,) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("workspace_min and workspace_max must be three finite numbers each")
        if not np.all(lo < hi):
            raise ValueError(f"workspace_min {tuple(lo)} must be below workspace_max {tuple(hi)}")
        object.__setattr__(self, "workspace_min", tuple(float(v) for v in lo))
        object.__setattr__(self, "workspace_max", tuple(float(v) for v in hi))
        positive = (
            "max_linear_speed", "max_angular_speed", "max_step", "max_rotation_step",
            "max_command_age", "watchdog_timeout", "max_contact_force",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"safety limit {name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.max_clock_skew) and self.max_clock_skew >= 0):
            raise ValueError(f"max_clock_skew must be >= 0, got {self.max_clock_skew!r}")
        if not (0.0 <= self.gripper_min_width < self.gripper_max_width <= GRIPPER_MAX_WIDTH):
            raise ValueError(
                f"gripper limits must satisfy 0 <= min < max <= {GRIPPER_MAX_WIDTH}, got "
                f"[{self.gripper_min_width}, {self.gripper_max_width}]"
            )
        if not self.base_frame:
            raise ValueError("base_frame must be a frame name")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SafetyLimits:
        """Build from a parameter dict, refusing unknown keys (a typo must not drop a limit)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown safety limit(s) {unknown}; known: {sorted(known)}")
        converted = {k: tuple(v) if k.startswith("workspace_") else v for k, v in values.items()}
        return cls(**converted)

    def contains(self, position: np.ndarray, margin: float = 0.0) -> bool:
        """Whether a TCP position is inside the workspace box grown by ``margin``."""
        p = np.asarray(position, dtype=float)
        lo = np.asarray(self.workspace_min) - margin
        hi = np.asarray(self.workspace_max) + margin
        return bool(np.all(np.isfinite(p)) and np.all(p >= lo) and np.all(p <= hi))
