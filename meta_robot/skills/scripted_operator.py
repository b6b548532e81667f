"""A scripted operator for the sim: privileged-state controllers for every primitive skill.

It plays the part of a person at a SpaceMouse: each control tick it looks at the privileged world
state and answers with a twist (m/s, rad/s in the base frame) and a gripper action, which the node
sends to the teleop node exactly as a device would. Approach heights, speeds, grasp offsets and
yaws are drawn per episode from a seeded generator, so the demonstrations are diverse but
reproducible. Whether an episode succeeded is read off the registry's post-conditions, never
assumed from the script having finished.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from meta_robot.geometry import quat_conjugate, quat_multiply, quat_to_rotvec
from meta_robot.skills.registry import GroundSkill
from meta_robot.skills.world import Grounding, WorldState
from meta_robot.teleop.devices import Frame, GripperAction, OperatorSample

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # xyzw: TCP z axis pointing at the desk, hand x along base x
OPEN, CLOSE = "open", "close"
STALL_TIME = 1.5  # s without getting closer to a waypoint ...
STALL_TOLERANCE = 0.015  # m ... this near it counts as reached

# Object shapes the grasps depend on (half extents, m): how high to grasp and how to turn the hand.
OBJECT_HALF_HEIGHT = {"red_cube": 0.02, "green_cylinder": 0.03, "blue_bar": 0.015}
GRASP_SYMMETRY = {"red_cube": math.pi / 2, "green_cylinder": 0.0, "blue_bar": math.pi}  # 0: any yaw
GRASP_YAW_OFFSET = {"red_cube": 0.0, "green_cylinder": 0.0, "blue_bar": math.pi / 2}


@dataclass(frozen=True)
class OperatorAction:
    """What the operator does this tick: base-frame twist and an optional gripper action."""

    linear: np.ndarray  # m/s
    angular: np.ndarray  # rad/s
    gripper: str | None = None  # "open", "close" or None (keep)


GRIPPER_ACTIONS = {None: GripperAction.KEEP, OPEN: GripperAction.OPEN, CLOSE: GripperAction.CLOSE}


def to_sample(
    action: OperatorAction, max_linear_speed: float, max_angular_speed: float, deadman: bool = True
) -> OperatorSample:
    """The device sample a SpaceMouse would give for ``action``: axes normalised by the teleop
    node's speed limits, at speed scale 1, in the base frame."""
    twist = np.concatenate([action.linear / max_linear_speed, action.angular / max_angular_speed])
    return OperatorSample(
        device="scripted",
        deadman=deadman,
        twist=tuple(float(v) for v in np.clip(twist, -1.0, 1.0)),
        frame=Frame.BASE,
        gripper=GRIPPER_ACTIONS[action.gripper],
        speed_scale=1.0,
    )


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


@dataclass(frozen=True)
class OperatorStyle:
    """The per-episode randomisation of a demonstration."""

    speed: float  # m/s cruise
    approach_height: float  # m above the grasp
    lift_height: float  # m of the TCP after a grasp
    offset: np.ndarray  # m, xy jitter of grasp and place points
    yaw_jitter: float  # rad

    @classmethod
    def sample(cls, rng: np.random.Generator) -> OperatorStyle:
        return cls(
            speed=float(rng.uniform(0.08, 0.16)),
            approach_height=float(rng.uniform(0.07, 0.13)),
            lift_height=float(rng.uniform(0.16, 0.22)),
            offset=rng.uniform(-0.004, 0.004, size=2),
            yaw_jitter=float(rng.uniform(-0.08, 0.08)),
        )


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


class ScriptedOperator:
    """Runs one skill as a sequence of waypoints computed from the world when each one starts."""

    def __init__(
        self,
        skill: GroundSkill,
        grounding: Grounding,
        rng: np.random.Generator,
        max_linear_speed: float = 0.25,
        max_angular_speed: float = 1.0,
    ) -> None:
        self.skill = skill
        self.grounding = grounding
        self.style = OperatorStyle.sample(rng)
        self.max_linear_speed = max_linear_speed
        self.max_angular_speed = max_angular_speed
        self.geometry = grounding.geometry
        planners: dict[str, Callable[[], list[Callable[[WorldState], Waypoint]]]] = {
            "pick": self._pick,
            "place_in_drawer": self._place_in_drawer,
            "place_on_shelf": self._place_on_shelf,
            "open_drawer": self._open_drawer,
            "close_drawer": self._close_drawer,
            "push": self._push,
        }
        if skill.name not in planners:
            raise ValueError(f"the scripted operator has no controller for skill '{skill.name}'")
        self._phases: list[Callable[[WorldState], Waypoint | None]] = planners[skill.name]()
        self._index = -1
        self._current: Waypoint | None = None
        self._reached_at: float | None = None
        # Assert the hand's state from the first tick: a skill that starts holding something must not
        # let the teleop node's remembered width open the fingers, and one that starts empty-handed
        # must not approach with fingers a previous skill left closed.
        holding = any(lit.predicate == "holding" and not lit.negated for lit in skill.preconditions)
        empty = any(lit.predicate == "hand_empty" and not lit.negated for lit in skill.preconditions)
        self._gripper_sent: str | None = CLOSE if holding else OPEN if empty else None
        self.finished = False

    # --- control loop ---------------------------------------------------------------------------
    def act(self, world: WorldState, tcp_orientation: np.ndarray, now: float) -> OperatorAction:
        """The twist and gripper action for this tick; sets ``finished`` after the last waypoint."""
        if self._current is None:
            self._advance(world)
        if self.finished or self._current is None:
            return OperatorAction(np.zeros(3), np.zeros(3))
        wp = self._current
        target = wp.track(world) if wp.track is not None else wp.position
        error = target - world.tcp_position
        rotation_error = quat_to_rotvec(quat_multiply(hand_quat(wp.yaw), quat_conjugate(tcp_orientation)))
        distance = float(np.linalg.norm(error)) + 0.05 * float(np.linalg.norm(rotation_error))
        if distance < self._best_distance - 0.001:  # still closing in
            self._best_distance, self._best_time = distance, now
        # Like a person, accept "nearly there and no longer getting closer" (a controller's steady-state
        # error under load, a finger resting on the desk) instead of waiting out the skill's timeout.
        stalled = now - self._best_time > STALL_TIME and float(np.linalg.norm(error)) < STALL_TOLERANCE
        reached = (
            (float(np.linalg.norm(error)) < wp.tolerance and float(np.linalg.norm(rotation_error)) < 0.05)
            or (wp.done_when is not None and wp.done_when(world))
            or (stalled and wp.tolerance > 0.0)
        )
        gripper = None
        if reached and self._reached_at is None:
            self._reached_at = now
        if self._reached_at is not None:
            if wp.gripper is not None and self._gripper_sent != wp.gripper:
                gripper = wp.gripper
                self._gripper_sent = wp.gripper
            if now - self._reached_at >= wp.dwell:
                self._advance(world)
        linear = _clip_norm(3.0 * error, min(wp.speed, self.max_linear_speed))
        angular = _clip_norm(3.0 * rotation_error, self.max_angular_speed * 0.6)
        if gripper is None and self._gripper_sent is not None:
            gripper = self._gripper_sent  # keep asserting the last gripper action
        return OperatorAction(linear, angular, gripper)

    def succeeded(self, world: WorldState) -> bool:
        """The skill's post-conditions, from privileged state."""
        return self.grounding.succeeded(world, self.skill)

    def _advance(self, world: WorldState) -> None:
        self._index += 1
        self._reached_at = None
        self._best_distance, self._best_time = math.inf, -math.inf
        if self._index >= len(self._phases):
            self.finished = True
            self._current = None
            return
        self._current = self._phases[self._index](world)
        if self._current is None:  # a phase with nothing to do here (e.g. a retry that is not needed)
            self._advance(world)

    # --- skills ---------------------------------------------------------------------------------
    def _grasp_yaw(self, world: WorldState, obj: str) -> float:
        yaw = yaw_of(world.orientations.get(obj, np.array([0.0, 0.0, 0.0, 1.0]))) + GRASP_YAW_OFFSET.get(
            obj, 0.0
        )
        return nearest_equivalent(yaw, GRASP_SYMMETRY.get(obj, math.pi / 2), self.style.yaw_jitter)

    def _pick(self) -> list[Callable[[WorldState], Waypoint]]:
        obj = self.skill.arguments[0]
        s = self.style
        half = OBJECT_HALF_HEIGHT.get(obj, 0.02)
        grasp_z = max(0.012, 2 * half - 0.02)  # fingertips 2 cm below the top, clear of the desk

        def above(w: WorldState) -> Waypoint:
            p = w.objects[obj]
            return Waypoint(
                np.array([p[0], p[1], grasp_z + s.approach_height]),
                self._grasp_yaw(w, obj),
                s.speed,
                tolerance=0.01,
                gripper=OPEN,
            )

        def down(w: WorldState) -> Waypoint:
            p = w.objects[obj]
            xy = p[:2] + s.offset
            return Waypoint(
                np.array([xy[0], xy[1], grasp_z]), self._grasp_yaw(w, obj), s.speed * 0.5, tolerance=0.005
            )

        def close(w: WorldState) -> Waypoint:
            return Waypoint(
                w.tcp_position.copy(), self._current.yaw, 0.02, tolerance=1.0, gripper=CLOSE, dwell=0.8
            )

        def lift(w: WorldState) -> Waypoint:
            return Waypoint(
                np.array([w.tcp_position[0], w.tcp_position[1], s.lift_height]),
                self._current.yaw,
                s.speed * 0.7,
                tolerance=0.01,
                dwell=0.3,
            )

        return [above, down, close, lift]

    def _release_sequence(
        self, release: Callable[[WorldState], np.ndarray], yaw: Callable[[WorldState], float]
    ) -> list[Callable[[WorldState], Waypoint]]:
        s = self.style

        def carry(w: WorldState) -> Waypoint:
            p = release(w)
            return Waypoint(
                np.array([p[0], p[1], max(p[2] + 0.08, s.lift_height)]), yaw(w), s.speed, tolerance=0.012
            )

        def lower(w: WorldState) -> Waypoint:
            return Waypoint(release(w), yaw(w), s.speed * 0.5, tolerance=0.006)

        def let_go(w: WorldState) -> Waypoint:
            return Waypoint(
                w.tcp_position.copy(), self._current.yaw, 0.02, tolerance=1.0, gripper=OPEN, dwell=0.6
            )

        def retreat(w: WorldState) -> Waypoint:
            p = w.tcp_position
            return Waypoint(
                np.array([p[0], p[1], p[2] + 0.08]),
                self._current.yaw,
                s.speed * 0.7,
                tolerance=0.012,
                dwell=0.4,
            )

        return [carry, lower, let_go, retreat]

    def _place_in_drawer(self) -> list[Callable[[WorldState], Waypoint]]:
        box = self.geometry["drawer_interior"]

        def release(w: WorldState) -> np.ndarray:
            centre = np.asarray(box["centre"], dtype=float) + self.grounding.drawer_interior_offset(w)
            # toward the open front: clear of the cabinet above the back of the drawer
            x = centre[0] - 0.035 + self.style.offset[0]
            return np.array([x, centre[1] + 2 * self.style.offset[1], 0.10])

        return self._release_sequence(release, lambda w: self.style.yaw_jitter)

    def _place_on_shelf(self) -> list[Callable[[WorldState], Waypoint]]:
        box = self.geometry["shelf_top"]
        obj = self.skill.arguments[0]
        half = OBJECT_HALF_HEIGHT.get(obj, 0.02)

        def release(w: WorldState) -> np.ndarray:
            surface = box["centre"][2] - box["half_size"][2]
            c = np.asarray(box["centre"], dtype=float)
            return np.array(
                [
                    c[0] - 0.02 + 3 * self.style.offset[0],
                    c[1] + 3 * self.style.offset[1],
                    surface + 2 * half + 0.01,
                ]
            )

        return self._release_sequence(release, lambda w: self.style.yaw_jitter)

    def _hand_clearance(
        self,
        xy: np.ndarray,
        yaw: float,
        half_length: float = 0.11,
        half_width: float = 0.035,
        extra: list[dict[str, list[float]]] | None = None,
    ) -> float:
        """How far (m) the corners of the hand's footprint stay outside the furniture footprints."""
        axis = np.array([-math.sin(yaw), math.cos(yaw)])  # the finger axis (hand y) in the base frame
        across = np.array([math.cos(yaw), math.sin(yaw)])  # hand x
        corners = [
            xy + axis * a * half_length + across * b
            for a in (-1.0, -0.5, 0.0, 0.5, 1.0)
            for b in (-half_width, half_width)
        ]
        clearance = math.inf
        for box in [*self.geometry.get("keep_out", {}).values(), *(extra or [])]:
            centre, half = np.asarray(box["centre"], dtype=float), np.asarray(box["half_size"], dtype=float)
            for corner in corners:
                outside = np.abs(corner - centre) - half
                clearance = min(clearance, float(np.max(outside)))
        return clearance

    def _handle(self, w: WorldState) -> np.ndarray:
        return np.asarray(
            self.geometry["drawer_handle"]["centre"], dtype=float
        ) + self.grounding.drawer_interior_offset(w)

    def _open_drawer(self) -> list[Callable[[WorldState], Waypoint]]:
        s = self.style
        yaw = s.yaw_jitter * 0.5  # fingers across the knob (along base y)
        travel = float(self.geometry["drawer_open_at"]) + 0.025

        def above(w: WorldState) -> Waypoint:
            h = self._handle(w)
            return Waypoint(
                np.array([h[0], h[1], h[2] + s.approach_height]), yaw, s.speed, tolerance=0.01, gripper=OPEN
            )

        def down(w: WorldState) -> Waypoint:
            h = self._handle(w)
            return Waypoint(h.copy(), yaw, s.speed * 0.5, tolerance=0.005)

        def grip(w: WorldState) -> Waypoint:
            return Waypoint(w.tcp_position.copy(), yaw, 0.02, tolerance=1.0, gripper=CLOSE, dwell=0.8)

        def pull(w: WorldState) -> Waypoint:
            h = self._handle(w)
            closed_x = h[0] + w.drawer_opening
            return Waypoint(np.array([closed_x - travel, h[1], h[2]]), yaw, s.speed * 0.5, tolerance=0.006)

        def release(w: WorldState) -> Waypoint:
            return Waypoint(w.tcp_position.copy(), yaw, 0.02, tolerance=1.0, gripper=OPEN, dwell=0.6)

        def back_off(w: WorldState) -> Waypoint:
            p = w.tcp_position
            return Waypoint(np.array([p[0] - 0.03, p[1], p[2] + 0.10]), yaw, s.speed * 0.7, tolerance=0.012)

        return [above, down, grip, pull, release, back_off]

    def _close_drawer(self) -> list[Callable[[WorldState], Waypoint]]:
        s = self.style
        closed_margin = float(self.geometry["drawer_closed_at"]) - 0.004  # well inside "closed"
        yaw = s.yaw_jitter

        def before(w: WorldState) -> Waypoint:
            h = self._handle(w)
            return Waypoint(
                np.array([h[0] - 0.05, h[1], h[2] + s.approach_height]),
                yaw,
                s.speed,
                tolerance=0.01,
                gripper=CLOSE,
            )

        def down(w: WorldState) -> Waypoint:
            h = self._handle(w)
            return Waypoint(np.array([h[0] - 0.04, h[1], h[2] - 0.005]), yaw, s.speed * 0.5, tolerance=0.006)

        def push(w: WorldState) -> Waypoint:
            h = self._handle(w)
            closed_x = h[0] + w.drawer_opening
            return Waypoint(
                np.array([closed_x - 0.032, h[1], h[2] - 0.005]),  # fingertips on the knob cap
                yaw,
                s.speed * 0.5,
                tolerance=0.004,
                done_when=lambda world: world.drawer_opening < closed_margin,
            )

        def back_off(w: WorldState) -> Waypoint:
            p = w.tcp_position
            return Waypoint(
                np.array([p[0] - 0.06, p[1], p[2] + 0.08]), yaw, s.speed * 0.7, tolerance=0.012, dwell=0.3
            )

        return [before, down, push, back_off]

    def _push(self) -> list[Callable[[WorldState], Waypoint | None]]:
        """Closed fingers low behind the object, then a slow closed-loop stroke toward the region.

        The fingertips are a small pusher, and a point pusher is unstable on its own: round and long
        objects roll off the stroke line. So every tick the pusher re-aims on the line goal -> object,
        slowing its advance as it drifts off that line and backing out of contact to slide sideways
        when it is far off (align, then push). If the object gets away (pusher beside or ahead of it),
        lift and approach again from behind. Strokes whose start would put the hand into furniture go
        first straight toward the robot, away from it.
        """
        obj, region = self.skill.arguments
        s = self.style
        box = self.geometry["regions"][region]
        centre = np.asarray(box["centre"][:2], dtype=float)
        region_goal = centre + s.offset * 2
        inner = np.asarray(box["half_size"][:2], dtype=float) - 0.025
        # TCP height: the fingertips reach ~8 mm below the TCP and the hand's housing, which overhangs
        # the object being pushed, starts ~4 cm above it. The tall cylinder is pushed at about a third
        # of its height: lower, the housing rests on its 6 cm top and tips it; higher, it topples.
        z = 0.028 if obj == "green_cylinder" else 0.016
        speed = 0.035 + 0.25 * (s.speed - 0.08)  # m/s of the stroke: 3.5..5.5 cm/s
        stroke: dict[str, np.ndarray] = {}

        def arrived(w: WorldState) -> bool:
            return bool(np.all(np.abs(w.objects[obj][:2] - centre) <= inner))

        def reach(w: WorldState, d: np.ndarray) -> float:
            """The object's half-extent along ``d`` plus the closed fingertips' half-depth."""
            if obj == "blue_bar":
                yaw = yaw_of(w.orientations.get(obj, np.array([0.0, 0.0, 0.0, 1.0])))
                along = abs(0.015 * (math.cos(yaw) * d[0] + math.sin(yaw) * d[1]))
                along += abs(0.045 * (-math.sin(yaw) * d[0] + math.cos(yaw) * d[1]))
                return along + 0.015
            return 0.02 + 0.015

        def plan(w: WorldState) -> None:
            """Choose this stroke's goal, its start behind the object, and the hand's yaw."""
            o = w.objects[obj][:2]
            # the drawer's knob sticks out of the cabinet's footprint, the more the further it is open
            knob = self._handle(w)[:2] + np.array([-0.01, 0.0])
            extra = [{"centre": list(knob), "half_size": [0.03, 0.035]}]
            for goal in (region_goal, np.array([min(o[0] - 0.10, 0.40), o[1]])):
                d = goal - o
                d = d / max(float(np.linalg.norm(d)), 1e-6)
                start = o - d * (reach(w, d) + 0.03)
                heading = math.atan2(d[1], d[0])
                # Prefer the finger axis along the stroke: the front finger's flat back pushes, and a
                # round object cannot wedge between the fingers and pry them apart. Else the yaw most
                # clear of the furniture, the hand being 20 cm long along the finger axis.
                yaws = [heading + math.radians(a) for a in range(90, 270, 15)]
                clear = {yaw: self._hand_clearance(start, yaw, extra=extra) for yaw in yaws}
                yaw = yaws[0] if clear[yaws[0]] > 0.02 else max(yaws, key=lambda y: clear[y])
                # steer at a point beyond the goal so the stroke's direction does not swing near it
                aim = goal + d * 0.06
                stroke.update(goal=aim, start=start, yaw=np.array(nearest_equivalent(yaw, math.pi, 0.0)))
                stroke["via"] = np.array(float(goal is not region_goal))
                if clear[yaw] > 0.01:
                    break

        def geometry_now(w: WorldState) -> tuple[np.ndarray, np.ndarray, float, float]:
            o = w.objects[obj][:2]
            d = stroke["goal"] - o
            d = d / max(float(np.linalg.norm(d)), 1e-6)
            rel = w.tcp_position[:2] - o
            behind = -float(rel @ d)  # how far the pusher is behind the object along the stroke
            lateral = rel + d * behind  # the pusher's offset from the line goal -> object
            return o, d, behind, float(np.linalg.norm(lateral))

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
                gripper=CLOSE,
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
            via = bool(stroke["via"])

            def target(world: WorldState) -> np.ndarray:
                o, d, behind, lateral_norm = geometry_now(world)
                rel = world.tcp_position[:2] - o
                lateral = rel + d * behind
                # advance only when on the line; beyond 1.2 cm off it, back out of contact
                advance = float(np.clip(speed * (1.0 - lateral_norm / 0.012), -speed, speed))
                velocity = _clip_norm(d * advance - 1.5 * lateral, speed)
                xy = world.tcp_position[:2] + velocity / 3.0
                return np.array([xy[0], xy[1], z])

            def done(world: WorldState) -> bool:
                o, d, behind, lateral_norm = geometry_now(world)
                if arrived(world):
                    return True
                if via and o[0] <= stroke["goal"][0] + 0.07:
                    return True  # clear of the furniture: re-plan toward the region
                # the object got away: beside or ahead of the pusher, or far off the line
                return behind < 0.012 or lateral_norm > 0.035 or behind > reach(world, d) + 0.09

            # tolerance 0: the tracked target always leads the TCP, only ``done`` ends the stroke
            return Waypoint(
                np.array([0.0, 0.0, z]),
                float(stroke["yaw"]),
                speed,
                tolerance=0.0,
                track=target,
                done_when=done,
            )

        def lift(w: WorldState) -> Waypoint | None:
            if "yaw" not in stroke:  # no stroke since the last lift
                return None
            _, d, _, _ = geometry_now(w)
            p = w.tcp_position - np.append(d * 0.03, 0.0)
            return Waypoint(
                np.array([p[0], p[1], z + s.approach_height]),
                float(stroke.pop("yaw")),
                s.speed * 0.7,
                tolerance=0.012,
                dwell=0.2,
            )

        return [above, down, push, lift] * 5


@dataclass
class EpisodeClock:
    """Skill timeout bookkeeping in the clock the operator runs on (sim time in sim)."""

    timeout: float
    started: float | None = None
    elapsed: float = field(default=0.0)

    def tick(self, now: float) -> bool:
        """Advance; True once the timeout has passed."""
        if self.started is None:
            self.started = now
        self.elapsed = now - self.started
        return self.elapsed > self.timeout


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v if norm <= limit or norm == 0.0 else v * (limit / norm)
