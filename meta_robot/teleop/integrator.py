"""Operator twists -> absolute TCP targets, the way the safety layer wants them.

A device gives velocities; the arm takes absolute targets (ArmCommand MODE_ABSOLUTE). Integrating
``target += v * dt`` open-loop would let the target run away from a stalled or blocked arm until the
safety layer refused every command as too large a step, so the target is kept within ``max_lead`` (and
``max_lead_angle``) of the measured TCP, like :mod:`meta_robot.ros.commander`'s carrot, and inside the
workspace box so the arm slides along a wall instead of being refused. The target restarts from the
measured pose whenever the operator (re)engages the dead-man, and stops where the arm is when it is
released.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from meta_robot.core.arm import GRIPPER_MAX_WIDTH, Pose
from meta_robot.core.geometry import (
    quat_angle,
    quat_conjugate,
    quat_multiply,
    quat_normalize,
    quat_slerp,
    rotvec_to_quat,
)
from meta_robot.teleop.devices import Frame, GripperAction, OperatorSample


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vector ``v`` rotated by unit quaternion ``q`` (xyzw)."""
    return quat_multiply(quat_multiply(q, np.array([*v, 0.0])), quat_conjugate(q))[:3]


@dataclass(frozen=True)
class IntegratorConfig:
    """Speeds, lead limits and gripper widths of the teleop target. Units: m, rad, s."""

    max_linear_speed: float = field(default=0.15, metadata={"doc": "m/s at full deflection and scale 1"})
    max_angular_speed: float = field(default=0.8, metadata={"doc": "rad/s at full deflection and scale 1"})
    default_speed_scale: float = field(
        default=0.5, metadata={"doc": "scale used when a device sends speed_scale 0", "range": (0.01, 1.0)}
    )
    max_lead: float = field(default=0.05, metadata={"doc": "m the target may run ahead of the measured TCP"})
    max_lead_angle: float = field(
        default=0.3, metadata={"doc": "rad the target orientation may run ahead of the measured one"}
    )
    gripper_open_width: float = field(default=GRIPPER_MAX_WIDTH, metadata={"doc": "m, gripper open"})
    gripper_closed_width: float = field(default=0.0, metadata={"doc": "m, gripper closed (grasp)"})
    workspace_min: tuple[float, float, float] | None = None  # m, box the target is kept in
    workspace_max: tuple[float, float, float] | None = None
    workspace_margin: float = 0.005  # m inside the box

    def __post_init__(self) -> None:
        for name in ("max_linear_speed", "max_angular_speed", "max_lead", "max_lead_angle"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 0 < self.default_speed_scale <= 1:
            raise ValueError(f"default_speed_scale must be in (0, 1], got {self.default_speed_scale}")
        if not 0 <= self.gripper_closed_width < self.gripper_open_width <= GRIPPER_MAX_WIDTH:
            raise ValueError(
                f"gripper widths must satisfy 0 <= closed < open <= {GRIPPER_MAX_WIDTH}, got "
                f"closed {self.gripper_closed_width}, open {self.gripper_open_width}"
            )
        if (self.workspace_min is None) != (self.workspace_max is None):
            raise ValueError("give both workspace_min and workspace_max, or neither")


class TargetIntegrator:
    """Holds the operator's absolute TCP target and gripper width; call :meth:`update` each tick."""

    def __init__(self, config: IntegratorConfig | None = None) -> None:
        self.config = config or IntegratorConfig()
        self.target: Pose | None = None
        self.gripper_width: float = self.config.gripper_open_width
        self._moving = False

    def reset(self, gripper_width: float | None = None) -> None:
        """Forget the target (the next update starts from the measured pose); optionally set the
        gripper width the operator starts from (the last commanded or measured one)."""
        self.target = None
        self._moving = False
        if gripper_width is not None:
            cfg = self.config
            self.gripper_width = float(
                min(cfg.gripper_open_width, max(cfg.gripper_closed_width, gripper_width))
            )

    def apply_gripper(self, action: GripperAction) -> float:
        """Open, close or toggle the gripper; toggling closes a gripper that is more than half open."""
        cfg = self.config
        if action is GripperAction.OPEN:
            self.gripper_width = cfg.gripper_open_width
        elif action is GripperAction.CLOSE:
            self.gripper_width = cfg.gripper_closed_width
        elif action is GripperAction.TOGGLE:
            middle = 0.5 * (cfg.gripper_open_width + cfg.gripper_closed_width)
            self.gripper_width = (
                cfg.gripper_closed_width if self.gripper_width > middle else cfg.gripper_open_width
            )
        return self.gripper_width

    def velocity(self, sample: OperatorSample) -> tuple[np.ndarray, np.ndarray]:
        """Linear (m/s) and angular (rad/s) velocity asked for, in the sample's frame."""
        scale = sample.speed_scale if sample.speed_scale > 0 else self.config.default_speed_scale
        twist = np.asarray(sample.twist, dtype=float)
        return (
            twist[:3] * self.config.max_linear_speed * scale,
            twist[3:] * self.config.max_angular_speed * scale,
        )

    def update(self, sample: OperatorSample, dt: float, measured: Pose) -> Pose:
        """Advance the target by the sample's twist over ``dt`` s (only while its dead-man is held)
        and return it, clamped to the lead limits around ``measured`` and to the workspace."""
        self.apply_gripper(sample.gripper)
        measured_q = quat_normalize(measured.orientation)
        engaging = sample.deadman and not self._moving
        releasing = self._moving and not sample.deadman
        if self.target is None or engaging or releasing:
            # (Re)engaged: start from the arm; released: stop where the arm is.
            self.target = Pose(measured.position.copy(), measured_q)
        self._moving = sample.deadman
        position = self.target.position.copy()
        orientation = self.target.orientation.copy()
        if sample.deadman and dt > 0:
            linear, angular = self.velocity(sample)
            if sample.frame is Frame.EE:
                # Tool-frame twist: rotate linear velocity into the base frame, rotate about body axes.
                position += rotate(orientation, linear) * dt
                orientation = quat_multiply(orientation, rotvec_to_quat(angular * dt))
            else:
                position += linear * dt
                orientation = quat_multiply(rotvec_to_quat(angular * dt), orientation)
            orientation = quat_normalize(orientation)
        position, orientation = self._clamp(position, orientation, measured.position, measured_q)
        self.target = Pose(position, orientation)
        return self.target

    def _clamp(
        self, position: np.ndarray, orientation: np.ndarray, measured_p: np.ndarray, measured_q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        lead = position - measured_p
        distance = float(np.linalg.norm(lead))
        if distance > cfg.max_lead:
            position = measured_p + lead * (cfg.max_lead / distance)
        angle = quat_angle(measured_q, orientation)
        if angle > cfg.max_lead_angle:
            orientation = quat_slerp(measured_q, orientation, cfg.max_lead_angle / angle)
        if cfg.workspace_min is not None and cfg.workspace_max is not None:
            margin = cfg.workspace_margin
            position = np.clip(
                position, np.asarray(cfg.workspace_min) + margin, np.asarray(cfg.workspace_max) - margin
            )
        return position, orientation
