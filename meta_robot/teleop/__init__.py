"""Teleoperation core: operator devices, the twist-to-target integrator and the policy/operator arbiter.

Pure Python (no rclpy); :mod:`meta_robot.nodes.teleop_node` wires it to ROS. :class:`TeleopConfig` is
the teleop node's one source of parameters (declared under ``teleop.``, set in ``config/teleop.yaml``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from meta_robot.core.arm import GRIPPER_MAX_WIDTH
from meta_robot.safety.limits import SafetyLimits
from meta_robot.teleop.arbiter import Arbiter, ArbiterConfig, Owner, Transition
from meta_robot.teleop.devices import (
    DEVICES,
    Clock,
    DeviceError,
    DeviceNotFoundError,
    DeviceOptions,
    EpisodeEventKind,
    Frame,
    GamepadDevice,
    GripperAction,
    KeyboardDevice,
    OperatorSample,
    SpaceMouseDevice,
    TeleopDevice,
    TopicDevice,
    open_device,
)
from meta_robot.teleop.integrator import IntegratorConfig, TargetIntegrator

__all__ = [
    "DEVICES",
    "Arbiter",
    "ArbiterConfig",
    "DeviceError",
    "DeviceNotFoundError",
    "DeviceOptions",
    "EpisodeEventKind",
    "Frame",
    "GamepadDevice",
    "GripperAction",
    "IntegratorConfig",
    "KeyboardDevice",
    "OperatorSample",
    "Owner",
    "SpaceMouseDevice",
    "TargetIntegrator",
    "TeleopConfig",
    "TeleopDevice",
    "TopicDevice",
    "Transition",
    "open_device",
]


@dataclass(frozen=True)
class TeleopConfig:
    """Parameters of the teleop node. Units: m, rad, s, Hz; twist axes are normalised to [-1, 1]."""

    device: str = field(default="keyboard", metadata={"doc": "keyboard | spacemouse | gamepad | topic"})
    rate: float = field(
        default=50.0, metadata={"doc": "Hz, device polling and command rate", "range": (1.0, 500.0)}
    )
    max_linear_speed: float = field(default=0.15, metadata={"doc": "m/s at full deflection, scale 1"})
    max_angular_speed: float = field(default=0.8, metadata={"doc": "rad/s at full deflection, scale 1"})
    speed_scale: float = field(
        default=0.5, metadata={"doc": "starting / default speed scale", "range": (0.01, 1.0)}
    )
    max_lead: float = field(default=0.05, metadata={"doc": "m the target may run ahead of the measured TCP"})
    max_lead_angle: float = field(default=0.3, metadata={"doc": "rad the target may turn ahead of the TCP"})
    gripper_open_width: float = field(default=GRIPPER_MAX_WIDTH, metadata={"doc": "m, gripper open"})
    gripper_closed_width: float = field(default=0.0, metadata={"doc": "m, gripper closed"})
    deadzone: float = field(
        default=0.1, metadata={"doc": "axis magnitude below which the operator is idle", "range": (0.0, 0.9)}
    )
    handback_delay: float = field(
        default=1.0, metadata={"doc": "s of operator idleness before control returns to the policy"}
    )
    policy_timeout: float = field(
        default=0.5, metadata={"doc": "s after its last command a policy counts as stopped"}
    )
    keyboard_hold: float = field(
        default=0.2, metadata={"doc": "s a key press holds the keyboard dead-man (no key-up in a terminal)"}
    )
    input_timeout: float = field(
        default=0.2, metadata={"doc": "s after which a topic device's last sample counts as released"}
    )
    gamepad_index: int = field(default=0, metadata={"doc": "which joystick SDL lists", "range": (0, 15)})

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"unknown teleop device '{self.device}'; choose one of {', '.join(DEVICES)}")
        for name in ("rate", "keyboard_hold", "input_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        # The component configs check the rest.
        self.integrator_config()
        self.arbiter_config()

    def integrator_config(self, limits: SafetyLimits | None = None) -> IntegratorConfig:
        """The integrator's settings, with the workspace box of ``limits`` if given."""
        return IntegratorConfig(
            max_linear_speed=self.max_linear_speed,
            max_angular_speed=self.max_angular_speed,
            default_speed_scale=self.speed_scale,
            max_lead=self.max_lead,
            max_lead_angle=self.max_lead_angle,
            gripper_open_width=self.gripper_open_width,
            gripper_closed_width=self.gripper_closed_width,
            workspace_min=None if limits is None else limits.workspace_min,
            workspace_max=None if limits is None else limits.workspace_max,
        )

    def arbiter_config(self) -> ArbiterConfig:
        """The arbiter's settings."""
        return ArbiterConfig(
            deadzone=self.deadzone, handback_delay=self.handback_delay, policy_timeout=self.policy_timeout
        )

    def device_options(self, clock: Clock = time.monotonic) -> DeviceOptions:
        """What opening the configured device needs."""
        return DeviceOptions(
            deadzone=self.deadzone,
            keyboard_hold=self.keyboard_hold,
            speed_scale=self.speed_scale,
            input_timeout=self.input_timeout,
            gamepad_index=self.gamepad_index,
            clock=clock,
        )

    def check_against(self, limits: SafetyLimits) -> None:
        """Refuse settings the safety layer would turn into refusals (a lead beyond its max step)."""
        if self.max_lead >= limits.max_step:
            raise ValueError(
                f"teleop max_lead {self.max_lead} m must be below the safety layer's max_step "
                f"{limits.max_step} m"
            )
        if self.max_lead_angle >= limits.max_rotation_step:
            raise ValueError(
                f"teleop max_lead_angle {self.max_lead_angle} rad must be below the safety layer's "
                f"max_rotation_step {limits.max_rotation_step} rad"
            )
        if (
            not limits.gripper_min_width
            <= self.gripper_closed_width
            < self.gripper_open_width
            <= limits.gripper_max_width
        ):
            raise ValueError(
                f"teleop gripper widths [{self.gripper_closed_width}, {self.gripper_open_width}] m must "
                f"lie in the safety range [{limits.gripper_min_width}, {limits.gripper_max_width}] m"
            )
