"""pick: over the object, down, close the fingers on it, lift (the grasp chosen as the hand sets off)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from meta_robot.skills.controllers.base import (
    CLOSE,
    OBJECT_HALF_HEIGHT,
    OPEN,
    PAD_GRASP,
    TRANSIT_Z,
    SkillContext,
    Waypoint,
)
from meta_robot.skills.controllers.hand import (
    grasp_choice,
    grasp_point,
    grasp_yaw,
)
from meta_robot.skills.world import WorldState


def pick(op: SkillContext) -> list[Callable[[WorldState], Waypoint]]:
    obj = op.skill.arguments[0]
    s = op.style
    half = OBJECT_HALF_HEIGHT.get(obj, 0.02)
    grasp_z = max(0.012, 2 * half - 0.02)  # fingertips 2 cm below the top, clear of the desk
    grasp: dict[str, float] = {}  # chosen once, as the hand sets off

    def choose(w: WorldState) -> None:
        if not grasp:
            grasp["turn"], grasp["shift"] = grasp_choice(op, w, obj, grasp_z)

    def rise(w: WorldState) -> Waypoint | None:
        """From low down (beside the drawer after opening or closing it), up first, turning to
        the grasp: turning on a slant down past the cabinet, the housing swings into its top."""
        if w.tcp_position[2] > TRANSIT_Z - 0.02:
            return None
        choose(w)
        yaw = grasp_yaw(op, w, obj, grasp["turn"])
        return Waypoint(np.array([*w.tcp_position[:2], TRANSIT_Z]), yaw, s.speed, tolerance=0.015)

    def over(w: WorldState) -> Waypoint | None:
        if not grasp:  # started high: straight on to above the object
            return None
        p = grasp_point(op, w, obj, grasp["shift"])
        yaw = grasp_yaw(op, w, obj, grasp["turn"])
        return Waypoint(np.array([p[0], p[1], TRANSIT_Z]), yaw, s.speed, tolerance=0.015)

    def above(w: WorldState) -> Waypoint:
        choose(w)
        p = grasp_point(op, w, obj, grasp["shift"])
        return Waypoint(
            np.array([p[0], p[1], grasp_z + s.approach_height]),
            grasp_yaw(op, w, obj, grasp["turn"]),
            s.speed,
            tolerance=0.01,
            gripper=OPEN,
        )

    def down(w: WorldState) -> Waypoint:
        yaw = grasp_yaw(op, w, obj, grasp["turn"])
        xy = grasp_point(op, w, obj, grasp["shift"]) + s.offset
        if obj in PAD_GRASP:  # 5.5 to 6.5 mm across the fingers (hand x), either way
            across = np.array([math.cos(yaw), math.sin(yaw)])
            jitter = float(across @ s.offset)
            xy += across * (math.copysign(PAD_GRASP[obj], jitter) - 0.75 * jitter)
        return Waypoint(np.array([xy[0], xy[1], grasp_z]), yaw, s.speed * 0.5, tolerance=0.005)

    def close(w: WorldState) -> Waypoint:
        return Waypoint(w.tcp_position.copy(), op.current.yaw, 0.02, tolerance=1.0, gripper=CLOSE, dwell=0.8)

    def lift(w: WorldState) -> Waypoint:
        return Waypoint(
            np.array([w.tcp_position[0], w.tcp_position[1], s.lift_height]),
            op.current.yaw,
            s.speed * 0.7,
            tolerance=0.01,
            dwell=0.3,
            needs_grasp=True,
        )

    return [rise, over, above, down, close, lift]
