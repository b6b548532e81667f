"""open_drawer and close_drawer: the knob grasped and pulled, or pushed home with closed fingers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from meta_robot.skills.controllers.base import (
    CLOSE,
    OPEN,
    SkillContext,
    Waypoint,
)
from meta_robot.skills.controllers.hand import (
    drawer_handle,
)
from meta_robot.skills.world import WorldState


def open_drawer(op: SkillContext) -> list[Callable[[WorldState], Waypoint]]:
    s = op.style
    yaw = s.yaw_jitter * 0.5  # fingers across the knob (along base y)
    travel = float(op.geometry["drawer_open_at"]) + 0.025

    def above(w: WorldState) -> Waypoint:
        h = drawer_handle(op, w)
        return Waypoint(
            np.array([h[0], h[1], h[2] + s.approach_height]), yaw, s.speed, tolerance=0.01, gripper=OPEN
        )

    def down(w: WorldState) -> Waypoint:
        h = drawer_handle(op, w)
        return Waypoint(h.copy(), yaw, s.speed * 0.5, tolerance=0.005)

    def grip(w: WorldState) -> Waypoint:
        return Waypoint(w.tcp_position.copy(), yaw, 0.02, tolerance=1.0, gripper=CLOSE, dwell=0.8)

    def pull(w: WorldState) -> Waypoint:
        h = drawer_handle(op, w)
        closed_x = h[0] + w.drawer_opening
        return Waypoint(
            np.array([closed_x - travel, h[1], h[2]]),
            yaw,
            s.speed * 0.5,
            tolerance=0.006,
            needs_grasp=True,
        )

    def release(w: WorldState) -> Waypoint:
        return Waypoint(w.tcp_position.copy(), yaw, 0.02, tolerance=1.0, gripper=OPEN, dwell=0.6)

    def back_off(w: WorldState) -> Waypoint:
        p = w.tcp_position
        return Waypoint(np.array([p[0] - 0.03, p[1], p[2] + 0.10]), yaw, s.speed * 0.7, tolerance=0.012)

    return [above, down, grip, pull, release, back_off]


def close_drawer(op: SkillContext) -> list[Callable[[WorldState], Waypoint]]:
    s = op.style
    # Pushed home against the stop, not just inside "closed": a learner imitating a push that ended
    # 4 mm inside the threshold stopped 1-5 mm short of it in most of its failures.
    pushed_home = 0.004
    yaw = s.yaw_jitter

    def before(w: WorldState) -> Waypoint:
        h = drawer_handle(op, w)
        return Waypoint(
            np.array([h[0] - 0.05, h[1], h[2] + s.approach_height]),
            yaw,
            s.speed,
            tolerance=0.01,
            gripper=CLOSE,
        )

    def down(w: WorldState) -> Waypoint:
        h = drawer_handle(op, w)
        return Waypoint(np.array([h[0] - 0.04, h[1], h[2] - 0.005]), yaw, s.speed * 0.5, tolerance=0.006)

    def push(w: WorldState) -> Waypoint:
        h = drawer_handle(op, w)
        closed_x = h[0] + w.drawer_opening
        return Waypoint(
            np.array([closed_x - 0.032, h[1], h[2] - 0.005]),  # fingertips on the knob cap
            yaw,
            s.speed * 0.5,
            tolerance=0.004,
            done_when=lambda world: world.drawer_opening < pushed_home,
            # Stalled 1.5 cm short is a drawer still open: it counted as reached and a learner
            # relabelled there was told to back off from a drawer at 16 mm (closed is <= 15 mm).
            stall_ok=False,
        )

    def back_off(w: WorldState) -> Waypoint:
        p = w.tcp_position
        return Waypoint(
            np.array([p[0] - 0.06, p[1], p[2] + 0.08]), yaw, s.speed * 0.7, tolerance=0.012, dwell=0.3
        )

    return [before, down, push, back_off]
