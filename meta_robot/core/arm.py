"""The arm contract shared by the real driver (franky) and the MuJoCo sim bridge.

Everything above this line (safety layer, driver node, policies) speaks in these types and never
knows which arm is behind them. Units are SI (metres, radians, seconds, newtons); orientations are
unit quaternions in ROS order (x, y, z, w); poses are of the tool centre point (TCP) in the robot's
base frame (REP-103: x forward, y left, z up).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

ARM_JOINT_NAMES: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
GRIPPER_MAX_WIDTH = 0.08  # m, Franka Hand fully open


@dataclass(frozen=True)
class Pose:
    """A rigid pose: position (m) and unit quaternion (x, y, z, w)."""

    position: np.ndarray
    orientation: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", np.asarray(self.position, dtype=float).reshape(3))
        object.__setattr__(self, "orientation", np.asarray(self.orientation, dtype=float).reshape(4))


@dataclass(frozen=True)
class ArmTarget:
    """What a driver is asked to track: a TCP pose and a gripper opening (m)."""

    pose: Pose
    gripper_width: float


@dataclass
class ArmState:
    """One reading of the arm, as a driver reports it."""

    stamp: float  # s, the driver's clock
    joint_positions: np.ndarray  # rad, 7
    joint_velocities: np.ndarray  # rad/s, 7
    tcp_pose: Pose  # in the base frame
    tcp_linear_velocity: np.ndarray  # m/s, 3, in the base frame
    gripper_width: float  # m
    gripper_grasped: bool  # the fingers are stopped on an object
    external_force: np.ndarray = field(default_factory=lambda: np.zeros(3))  # N at the TCP, base frame
    finger_positions: np.ndarray = field(default_factory=lambda: np.zeros(2))  # m, each finger


class ArmError(RuntimeError):
    """The arm refused or failed an operation; the message says why and what to do."""


class ArmBackend(abc.ABC):
    """A Cartesian arm with a parallel gripper.

    Lifecycle: ``connect()`` before anything else, ``disconnect()`` last (it must leave the arm
    stopped). ``command()`` is called at the driver's control rate with targets that the safety layer
    has already checked and rate-limited; a backend must never move faster than it is told.
    """

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection (hardware I/O happens here, never in the constructor)."""

    @abc.abstractmethod
    def read_state(self) -> ArmState:
        """Return the latest state; must not block for longer than one control period."""

    @abc.abstractmethod
    def command(self, target: ArmTarget) -> None:
        """Track ``target`` (already checked by the safety layer)."""

    @abc.abstractmethod
    def hold(self) -> None:
        """Stop all motion now and hold the current pose (watchdog, e-stop, reflex)."""

    @abc.abstractmethod
    def recover(self) -> None:
        """Clear a recoverable fault (e.g. a Franka reflex) so that commands are accepted again."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Stop the arm and release the connection. Safe to call twice."""
