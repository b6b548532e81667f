"""push: an object on the desk into a desk region, in short closed-loop strokes."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from meta_robot.skills.controllers.base import (
    CLOSE,
    CLOSED_FINGERS,
    HALF_EXTENTS,
    HAND_GAP,
    OPEN,
    OPEN_FINGERS,
    SkillContext,
    Waypoint,
    clip_norm,
    nearest_equivalent,
)
from meta_robot.skills.controllers.hand import (
    furniture_footprints,
    hand_room,
    object_orientation,
    rotation_matrix,
    unit,
)
from meta_robot.skills.world import WorldState


def push(op: SkillContext) -> list[Callable[[WorldState], Waypoint | None]]:
    """Fingers low behind the object, then slow closed-loop strokes: first straight toward the
    robot until the object is level with the region, then sideways into it.

    Each stroke is short and stops on the coordinate it corrects, so the object is never pushed
    past the region's near edge, where the pusher (TCP x >= 0.25) could not get behind it again.
    The gripper's spring is weak: an object sliding across closed fingers drags them apart, then
    wedges between them or is grasped. So the cube and the cylinder are pushed caged: the fingers
    open and along the stroke, straddling the object, the rear finger's flat, upright inner pad
    pushing it low (the tall cylinder tips when pushed high) and the front one stopping it from
    running ahead. So is the bar when broadside to the stroke; end-on it is too long to fit between
    the fingers, and the closed fingers push it side by side, hand x along the stroke, a flat face
    3 to 5 cm wide that squares it up, a little higher (low fingertips wedge under it and tip it).

    Every tick the pusher re-aims on the line aim -> object, slowing its advance as it drifts off
    that line and backing out of contact to slide sideways when it is far off. If the object gets
    away, lift and approach again from behind. Where the hand (its 20 cm long housing, its open
    fingers) would land on another object or reach into furniture, it is turned as little as
    clears it, or pushes with closed fingers.
    """
    obj, region = op.skill.arguments
    s = op.style
    box = op.geometry["regions"][region]
    centre = np.asarray(box["centre"][:2], dtype=float)
    inner = np.asarray(box["half_size"][:2], dtype=float) - 0.015
    goal = centre + s.offset * 2
    x_stop = goal[0] + 0.01  # the stroke toward the robot leaves the object here
    # TCP height: the fingertips reach 9 mm below the TCP, the housing starts 3.7 cm above it,
    # over the object. Fingertips 3 mm over the desk push low; the 6 cm cylinder needs the
    # housing just over its top, where it also keeps the cylinder from tipping. Under the 3 cm
    # bar's edge such low fingertips wedge and tip it onto them: 8 mm over the desk.
    z = {"green_cylinder": 0.025, "blue_bar": 0.017}.get(obj, 0.012)
    speed = 0.035 + 0.25 * (s.speed - 0.08)  # m/s of the stroke: 3.5..5.5 cm/s
    stroke: dict[str, np.ndarray] = {}

    def arrived(w: WorldState) -> bool:
        return bool(np.all(np.abs(w.objects[obj][:2] - centre) <= inner))

    def extent(w: WorldState, d: np.ndarray) -> tuple[float, float]:
        """How far the object reaches from its centre along ``d`` (anywhere, for a hand landing
        behind it) and where its surface crosses the line through its centre along ``d``."""
        axes = rotation_matrix(object_orientation(w, obj))[:2, :]
        along = np.abs(d @ axes)
        half = HALF_EXTENTS[obj]
        return float(half @ along), float(np.min(half / np.maximum(along, 1e-6)))

    def plan(w: WorldState) -> None:
        """Choose this stroke's aim, its start behind the object, and the hand's yaw."""
        o = w.objects[obj][:2]
        toward_robot = bool(o[0] > centre[0] + inner[0])
        # sideways: never toward +x, which would put the pusher beyond the workspace's near edge
        target = np.array([x_stop, o[1]]) if toward_robot else np.array([min(o[0], x_stop), goal[1]])
        d = unit(target - o)
        # Caged if the object fits between the open fingers (the bar only broadside to the stroke)
        # and the hand has room there; else the closed fingers. Where the pushing surface is, along
        # the stroke from the TCP: the rear finger's inner pad (fingers open 8 cm) or the closed
        # fingers' front face. Turn from the stroke's heading to the hand's yaw: the finger axis
        # (hand y) along the stroke when caged, across it when not. The hand (its housing and its
        # fingers, seen from above) must land clear of the other objects and the furniture: caged,
        # it may turn 15 degrees and still cage; closed, up to 90. The first yaw, nearest the
        # stroke's, where one of the standoffs behind the object leaves room (caged, merely
        # without touching: the closed fingers push the cube and the cylinder far worse), the
        # larger first; if none anywhere, the roomiest.
        furniture = furniture_footprints(op, w)
        cageable = obj != "blue_bar" or extent(w, d)[0] < 0.03
        reach = extent(w, d)[0]
        options: list[tuple[float, bool, float, np.ndarray, float]] = []  # room, caged, yaw, start, face
        for caged in (True, False) if cageable else (False,):
            face, turn = (-0.04, math.pi / 2) if caged else (0.011, 0.0)
            preferred = math.atan2(d[1], d[0]) + turn
            turns = sorted(range(-15, 16, 15) if caged else range(-90, 91, 15), key=abs)
            standoffs = np.array([0.01, 0.006, 0.003] if caged else [0.025, 0.015, 0.008, 0.004])
            starts = o - np.outer(reach + standoffs + face, d)
            fingers = OPEN_FINGERS if caged else CLOSED_FINGERS
            for yaw in (preferred + math.radians(a) for a in turns):
                rooms = hand_room(op, w, obj, starts, yaw, z, furniture, fingers)
                options += [(float(r), caged, yaw, p, face) for r, p in zip(rooms, starts, strict=True)]
        _, caged, yaw, start, face = next(
            (option for option in options if option[0] > (-HAND_GAP if option[1] else 0.0)),
            max(options, key=lambda option: option[0]),
        )
        # steer at a point beyond the target so the stroke's direction does not swing near it
        stroke.update(aim=target + d * 0.06, start=start, toward_robot=np.array(float(toward_robot)))
        stroke.update(caged=np.array(float(caged)), face=np.array(face))
        stroke["yaw"] = np.array(nearest_equivalent(yaw, math.pi, 0.0))

    def geometry_now(w: WorldState) -> tuple[np.ndarray, np.ndarray, float, float]:
        """The object, the stroke's direction, the pushing surface's gap behind the object's
        surface along it, and the pusher's distance from the line aim -> object."""
        o = w.objects[obj][:2]
        d = unit(stroke["aim"] - o)
        rel = w.tcp_position[:2] + d * float(stroke["face"]) - o
        behind = -float(rel @ d)
        lateral = rel + d * behind
        return o, d, behind - extent(w, d)[1], float(np.linalg.norm(lateral))

    def above(w: WorldState) -> Waypoint | None:
        if arrived(w):
            return None
        plan(w)
        p = stroke["start"]
        return Waypoint(
            np.array([p[0], p[1], z + s.approach_height]),
            float(stroke["yaw"]),
            s.speed,
            tolerance=0.01,
            gripper=OPEN if stroke["caged"] else CLOSE,
            dwell=0.3,
        )

    def down(w: WorldState) -> Waypoint | None:
        if arrived(w):
            return None
        p = stroke["start"]
        return Waypoint(np.array([p[0], p[1], z]), float(stroke["yaw"]), s.speed * 0.5, tolerance=0.006)

    def push(w: WorldState) -> Waypoint | None:
        if arrived(w):
            return None
        toward_robot = bool(stroke["toward_robot"])

        def target(world: WorldState) -> np.ndarray:
            o, d, gap, lateral_norm = geometry_now(world)
            lateral = world.tcp_position[:2] + d * float(stroke["face"]) - o + d * (gap + extent(world, d)[1])
            # advance only when on the line; beyond 1.2 cm off it, back out of contact
            advance = float(np.clip(speed * (1.0 - lateral_norm / 0.012), -speed, speed))
            velocity = clip_norm(d * advance - 1.5 * lateral, speed)
            xy = world.tcp_position[:2] + velocity / 3.0
            return np.array([xy[0], xy[1], z])

        def done(world: WorldState) -> bool:
            o, _, gap, lateral_norm = geometry_now(world)
            if toward_robot and o[0] <= x_stop:
                return True
            if not toward_robot and arrived(world) and abs(o[1] - goal[1]) < 0.02:
                return True
            # the object got away: beside or ahead of the pusher, or far off the line
            return gap < -0.015 or lateral_norm > 0.03 or gap > 0.09

        # tolerance 0: the tracked target always leads the TCP, only ``done`` ends the stroke
        return Waypoint(
            np.array([0.0, 0.0, z]),
            float(stroke["yaw"]),
            speed,
            tolerance=0.0,
            track=target,
            done_when=done,
        )

    def release(w: WorldState) -> Waypoint | None:
        if "yaw" not in stroke:  # no stroke since the last lift
            return None
        # Out of contact before lifting: a finger pressed against the object lifts it with it. The
        # caged object can still wedge between the open fingers, so they also slide out sideways,
        # to the +x side (away from the workspace's near edge), passing either side of it.
        _, d, _, _ = geometry_now(w)
        if stroke["caged"]:
            side = np.array([d[1], -d[0]])
            p = w.tcp_position[:2] - d * 0.01 + side * math.copysign(0.045, side[0] + 1e-9)
        else:
            p = w.tcp_position[:2] - d * 0.03
        return Waypoint(np.array([p[0], p[1], z]), float(stroke["yaw"]), s.speed * 0.5, tolerance=0.006)

    def lift(w: WorldState) -> Waypoint | None:
        if "yaw" not in stroke:
            return None
        p = w.tcp_position
        return Waypoint(
            np.array([p[0], p[1], z + s.approach_height]),
            float(stroke.pop("yaw")),
            s.speed * 0.7,
            tolerance=0.012,
            dwell=0.2,
        )

    return [above, down, push, release, lift] * 6
