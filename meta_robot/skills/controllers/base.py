"""What every skill controller is made of: waypoints, the operator's per-episode style, the hand and
object shapes the controllers plan with, and the context a controller reads (:class:`SkillContext`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from meta_robot.core.geometry import quat_multiply
from meta_robot.skills.registry import GroundSkill
from meta_robot.skills.world import Grounding, WorldState

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # xyzw: TCP z axis pointing at the desk, hand x along base x
OPEN, CLOSE = "open", "close"
TRANSIT_Z = 0.23  # m of the TCP: the hand and its fingertips over the cabinet and the shelf's objects
MAX_HAND_YAW = 1.9  # rad either way from hand x along base x: joint 7 stays clear of its limits

# Object shapes the grasps depend on (half extents, m): how high to grasp and how to turn the hand.
OBJECT_HALF_HEIGHT = {"red_cube": 0.02, "green_cylinder": 0.03, "blue_bar": 0.015}
GRASP_SYMMETRY = {"red_cube": math.pi / 2, "green_cylinder": 0.0, "blue_bar": math.pi}  # 0: any yaw
GRASP_YAW_OFFSET = {"red_cube": 0.0, "green_cylinder": 0.0, "blue_bar": math.pi / 2}
# Round objects are grasped off centre across the fingers (m, hand x), on one of the two columns of
# pads on each finger: grasped centred, the cylinder's side wedges between the columns and can hang on
# a finger after it opens, to be dragged over an edge or carried off.
PAD_GRASP = {"green_cylinder": 0.0055}
# Half extents (m) along each object's own axes, the cylinder as its bounding box: how far a pusher
# stands off the object's centre, and how much room an object takes where it is put down.
HALF_EXTENTS = {
    "red_cube": np.array([0.02, 0.02, 0.02]),
    "green_cylinder": np.array([0.02, 0.02, 0.03]),
    "blue_bar": np.array([0.015, 0.045, 0.015]),
}
# The hand seen from above (half extents along hand x and hand y, m): its housing, which starts
# HOUSING_HEIGHT over the TCP, and the open fingers, whose tips reach FINGERTIP_DEPTH below it.
HOUSING = np.array([0.035, 0.11])
HOUSING_HEIGHT = 0.037
OPEN_FINGERS = np.array([0.011, 0.066])
CLOSED_FINGERS = np.array([0.011, 0.012])
FINGERTIP_DEPTH = 0.009
HAND_GAP = 0.008  # m the hand keeps from objects it is not handling
# Where to put an object down: its footprint PLACE_MARGIN inside the container's box (its walls, its
# edge) and PLACE_GAP from the other objects' (dropped from a few cm it lands a few mm off; one landing
# on another tips over), chosen among spots PLACE_STEP apart.
PLACE_MARGIN = 0.012  # m
PLACE_GAP = 0.015  # m
PLACE_STEP = 0.005  # m
SHELF_DROP = 0.01  # m from the bottom of an object to the shelf's board when letting go of it


@dataclass
class Waypoint:
    """Go to ``position`` at yaw ``yaw``; then apply ``gripper`` and wait ``dwell`` seconds."""

    position: np.ndarray
    yaw: float
    speed: float
    tolerance: float = 0.006
    gripper: str | None = None
    dwell: float = 0.0
    track: Callable[[WorldState], np.ndarray] | None = None  # re-aimed every tick (pushing)
    done_when: Callable[[WorldState], bool] | None = None  # ends the waypoint early
    needs_grasp: bool = False  # only makes sense with something between the fingers (lift, carry, pull)
    stall_ok: bool = True  # "nearly there and no longer closing in" counts as reached


Phase = Callable[[WorldState], Waypoint | None]  # computes a waypoint as it starts (None: skip it)


@dataclass(frozen=True)
class OperatorStyle:
    """The per-episode randomisation of a demonstration."""

    speed: float  # m/s cruise
    approach_height: float  # m above the grasp
    lift_height: float  # m of the TCP after a grasp
    offset: np.ndarray  # m, xy jitter of grasp and place points
    yaw_jitter: float  # rad
    spot: np.ndarray  # where in a container to put an object, each axis -1 to 1 from its middle

    @classmethod
    def sample(cls, rng: np.random.Generator) -> OperatorStyle:
        return cls(
            speed=float(rng.uniform(0.08, 0.16)),
            approach_height=float(rng.uniform(0.07, 0.13)),
            lift_height=float(rng.uniform(0.16, 0.22)),
            offset=rng.uniform(-0.004, 0.004, size=2),
            yaw_jitter=float(rng.uniform(-0.08, 0.08)),
            spot=rng.uniform(-1.0, 1.0, size=2),  # drawn last: the other draws stay as they were
        )


class SkillContext(Protocol):
    """What a controller reads of the operator running it."""

    skill: GroundSkill
    grounding: Grounding
    style: OperatorStyle
    geometry: dict

    @property
    def hand_yaw(self) -> float:
        """The TCP's yaw at the last tick: where a held object sits in the hand."""
        ...

    @property
    def current(self) -> Waypoint | None:
        """The waypoint being followed."""
        ...


def yaw_of(quat: np.ndarray) -> float:
    """Rotation about the base z axis of an xyzw quaternion."""
    x, y, z, w = quat
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def hand_quat(yaw: float) -> np.ndarray:
    """The TCP orientation pointing down, turned by ``yaw`` about base z."""
    turn = np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])
    return quat_multiply(turn, DOWN)


def nearest_equivalent(yaw: float, symmetry: float, reference: float = 0.0) -> float:
    """The angle ``yaw + k * symmetry`` closest to ``reference`` (symmetry 0: ``reference``)."""
    if symmetry <= 0.0:
        return reference
    return yaw + symmetry * round((reference - yaw) / symmetry)


def clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v if norm <= limit or norm == 0.0 else v * (limit / norm)
