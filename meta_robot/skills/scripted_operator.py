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

from meta_robot.core.geometry import quat_conjugate, quat_multiply, quat_to_rotvec
from meta_robot.skills.registry import GroundSkill
from meta_robot.skills.world import Grounding, WorldState
from meta_robot.teleop.devices import Frame, GripperAction, OperatorSample

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # xyzw: TCP z axis pointing at the desk, hand x along base x
OPEN, CLOSE = "open", "close"
STALL_TIME = 1.5  # s without getting closer to a waypoint ...
STALL_TOLERANCE = 0.015  # m ... this near it counts as reached
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
    needs_grasp: bool = False  # only makes sense with something between the fingers (lift, carry, pull)
    stall_ok: bool = True  # "nearly there and no longer closing in" counts as reached


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
        self._planner = planners[skill.name]
        self._phases: list[Callable[[WorldState], Waypoint | None]] = self._planner()
        self._index = -1
        self._current: Waypoint | None = None
        self._reached_at: float | None = None
        self._grasp_lost_at: float | None = None
        self.restarts = 0
        # Assert the hand's state from the first tick: a skill that starts holding something must not
        # let the teleop node's remembered width open the fingers, and one that starts empty-handed
        # must not approach with fingers a previous skill left closed.
        holding = any(lit.predicate == "holding" and not lit.negated for lit in skill.preconditions)
        empty = any(lit.predicate == "hand_empty" and not lit.negated for lit in skill.preconditions)
        self._gripper_sent: str | None = CLOSE if holding else OPEN if empty else None
        self._hand_yaw = 0.0  # the TCP's yaw at the last tick: where a held object sits in the hand
        self.finished = False

    # --- control loop ---------------------------------------------------------------------------
    def act(self, world: WorldState, tcp_orientation: np.ndarray, now: float) -> OperatorAction:
        """The twist and gripper action for this tick; sets ``finished`` after the last waypoint."""
        self._hand_yaw = yaw_of(tcp_orientation)
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
            or (stalled and wp.tolerance > 0.0 and wp.stall_ok)
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

    def resync(self, world: WorldState, now: float, grace: float = 0.3) -> bool:
        """Re-derive where the skill stands when someone else drives the arm (DAgger's learner): a
        phase that needs a grasp with nothing held for ``grace`` s, or a finished script whose
        post-conditions do not hold, starts the skill again from the world as it is (its phases skip
        what is already done, e.g. the rise when the hand is high). True if it restarted."""
        lost = self._current is not None and self._current.needs_grasp and not world.gripper_grasped
        if not lost:
            self._grasp_lost_at = None
        elif self._grasp_lost_at is None:
            self._grasp_lost_at = now
        if (lost and now - self._grasp_lost_at >= grace) or (self.finished and not self.succeeded(world)):
            self.restart()
            return True
        return False

    def restart(self) -> None:
        """Plan the skill afresh: the next :meth:`act` computes its first phase from the world."""
        self._phases = self._planner()
        self._index = -1
        self._current = None
        self._reached_at = None
        self._grasp_lost_at = None
        self.finished = False
        self.restarts += 1

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
    def _grasp_yaw(self, world: WorldState, obj: str, turn: float = 0.0) -> float:
        """The hand's yaw grasping ``obj``: the grasp nearest the operator's habit, turned by ``turn``."""
        yaw = yaw_of(_orientation(world, obj)) + GRASP_YAW_OFFSET.get(obj, 0.0)
        return nearest_equivalent(yaw, GRASP_SYMMETRY.get(obj, math.pi / 2), self.style.yaw_jitter) + turn

    def _grasp_choice(self, w: WorldState, obj: str, height: float) -> tuple[float, float]:
        """How far to turn the hand from the habitual grasp at ``height`` to another equivalent one (the
        cube's other faces, any yaw round the cylinder), and to shift it along a long object (the bar,
        up to 2 cm off its middle), where the open fingers would land on another object, or the 20 cm
        housing on furniture (the cabinet, the pulled-out drawer beside an object at the desk's edge)
        or a taller object: as little as clears them."""
        symmetry = GRASP_SYMMETRY.get(obj, math.pi / 2)
        step = symmetry if symmetry > 0.0 else math.radians(15)
        habit = self._grasp_yaw(w, obj)
        turns = [k * step for k in range(-6, 7) if abs(k * step) <= math.pi / 2 + 1e-6]
        turns = [t for t in turns if abs(habit + t) <= MAX_HAND_YAW] or [0.0]
        extents = HALF_EXTENTS[obj][:2]
        shifts = [0.0, -0.01, 0.01, -0.02, 0.02] if abs(extents[0] - extents[1]) > 0.01 else [0.0]
        choices = sorted(
            ((t, d) for t in turns for d in shifts), key=lambda c: (abs(c[1]), abs(c[0]), abs(habit + c[0]))
        )
        if len(choices) == 1:
            return choices[0]
        furniture = self._furniture(w)

        def room(choice: tuple[float, float]) -> float:
            tcp = self._grasp_point(w, obj, choice[1])[None]
            return float(self._hand_room(w, obj, tcp, habit + choice[0], height, furniture)[0])

        rooms = {c: room(c) for c in choices}
        return next((c for c in choices if rooms[c] > 0.0), max(choices, key=lambda c: rooms[c]))

    def _grasp_point(self, w: WorldState, obj: str, shift: float) -> np.ndarray:
        """The object's middle (xy), or ``shift`` along its long axis from it."""
        if shift == 0.0:
            return w.objects[obj][:2].copy()
        axes = _rotation(_orientation(w, obj))[:2, :2]
        return w.objects[obj][:2] + shift * _unit(axes[:, int(np.argmax(HALF_EXTENTS[obj][:2]))])

    def _hand_room(
        self,
        w: WorldState,
        obj: str,
        tcp: np.ndarray,
        yaw: float,
        height: float,
        furniture: list[dict[str, list[float]]],
        fingers: np.ndarray = OPEN_FINGERS,
    ) -> np.ndarray:
        """The room (m) the hand handling ``obj`` has with the TCP at each of ``tcp`` (N, 2) and
        ``height``, turned ``yaw``: the least of its housing's clearance from ``furniture``, and of the
        housing's and the open fingers' from the other objects that reach up to them, less HAND_GAP."""
        room = _hand_clearance(tcp, yaw, furniture)
        hand = _yaw_axes(yaw)
        for footprint, top in _footprints(w, obj):
            for part, bottom in (
                (HOUSING, height + HOUSING_HEIGHT),
                (fingers, height - FINGERTIP_DEPTH),
            ):
                if top > bottom:
                    room = np.minimum(room, _footprint_gaps(tcp, hand, part, *footprint) - HAND_GAP)
        return room

    def _pick(self) -> list[Callable[[WorldState], Waypoint]]:
        obj = self.skill.arguments[0]
        s = self.style
        half = OBJECT_HALF_HEIGHT.get(obj, 0.02)
        grasp_z = max(0.012, 2 * half - 0.02)  # fingertips 2 cm below the top, clear of the desk
        grasp: dict[str, float] = {}  # chosen once, as the hand sets off

        def choose(w: WorldState) -> None:
            if not grasp:
                grasp["turn"], grasp["shift"] = self._grasp_choice(w, obj, grasp_z)

        def rise(w: WorldState) -> Waypoint | None:
            """From low down (beside the drawer after opening or closing it), up first, turning to
            the grasp: turning on a slant down past the cabinet, the housing swings into its top."""
            if w.tcp_position[2] > TRANSIT_Z - 0.02:
                return None
            choose(w)
            yaw = self._grasp_yaw(w, obj, grasp["turn"])
            return Waypoint(np.array([*w.tcp_position[:2], TRANSIT_Z]), yaw, s.speed, tolerance=0.015)

        def over(w: WorldState) -> Waypoint | None:
            if not grasp:  # started high: straight on to above the object
                return None
            p = self._grasp_point(w, obj, grasp["shift"])
            yaw = self._grasp_yaw(w, obj, grasp["turn"])
            return Waypoint(np.array([p[0], p[1], TRANSIT_Z]), yaw, s.speed, tolerance=0.015)

        def above(w: WorldState) -> Waypoint:
            choose(w)
            p = self._grasp_point(w, obj, grasp["shift"])
            return Waypoint(
                np.array([p[0], p[1], grasp_z + s.approach_height]),
                self._grasp_yaw(w, obj, grasp["turn"]),
                s.speed,
                tolerance=0.01,
                gripper=OPEN,
            )

        def down(w: WorldState) -> Waypoint:
            yaw = self._grasp_yaw(w, obj, grasp["turn"])
            xy = self._grasp_point(w, obj, grasp["shift"]) + s.offset
            if obj in PAD_GRASP:  # 5.5 to 6.5 mm across the fingers (hand x), either way
                across = np.array([math.cos(yaw), math.sin(yaw)])
                jitter = float(across @ s.offset)
                xy += across * (math.copysign(PAD_GRASP[obj], jitter) - 0.75 * jitter)
            return Waypoint(np.array([xy[0], xy[1], grasp_z]), yaw, s.speed * 0.5, tolerance=0.005)

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
                needs_grasp=True,
            )

        return [rise, over, above, down, close, lift]

    def _release_sequence(
        self, release: Callable[[WorldState], tuple[np.ndarray, float]], withdraw: bool
    ) -> list[Callable[[WorldState], Waypoint]]:
        """Carry the held object over ``release(w)`` (TCP position, hand yaw), lower it there, let go;
        ``withdraw``: then take the hand back over the desk."""
        s = self.style

        def rise(w: WorldState) -> Waypoint | None:
            """Up to the carrying height first: on the way over, the held object stays above what
            stands in the container (lifted off the desk, it would sweep through the shelf's edge)."""
            p, yaw = release(w)
            z = max(p[2] + 0.08, s.lift_height)
            if w.tcp_position[2] > z - 0.02:
                return None
            return Waypoint(
                np.array([*w.tcp_position[:2], z]), yaw, s.speed, tolerance=0.012, needs_grasp=True
            )

        def carry(w: WorldState) -> Waypoint:
            p, yaw = release(w)
            return Waypoint(
                np.array([p[0], p[1], max(p[2] + 0.08, s.lift_height)]),
                yaw,
                s.speed,
                tolerance=0.012,
                needs_grasp=True,
            )

        def lower(w: WorldState) -> Waypoint:
            p, yaw = release(w)
            return Waypoint(p, yaw, s.speed * 0.5, tolerance=0.006, needs_grasp=True)

        def let_go(w: WorldState) -> Waypoint:
            return Waypoint(
                w.tcp_position.copy(), release(w)[1], 0.02, tolerance=1.0, gripper=OPEN, dwell=0.6
            )

        def retreat(w: WorldState) -> Waypoint:
            p = w.tcp_position
            return Waypoint(
                np.array([p[0], p[1], p[2] + 0.08]),
                release(w)[1],
                s.speed * 0.7,
                tolerance=0.012,
                dwell=0.4,
            )

        def back(w: WorldState) -> Waypoint:
            desk = self.geometry["desk_top"]["centre"]
            p = np.array([desk[0], desk[1], w.tcp_position[2]])
            return Waypoint(p, release(w)[1], s.speed * 1.5, tolerance=0.03)

        return [rise, carry, lower, let_go, retreat] + ([back] if withdraw else [])

    def _place(
        self,
        box: Callable[[WorldState], tuple[np.ndarray, np.ndarray]],
        height: Callable[[WorldState], float],
        withdraw: bool = False,
    ) -> list[Callable[[WorldState], Waypoint]]:
        """Put the held object down in a container, the box ``box(w)`` (centre, half sizes; the drawer's
        moves with it), letting go with the TCP at ``height(w)``. Both are chosen once, as the carry
        starts, the spot relative to the box. ``withdraw``: then back over the desk."""
        obj = self.skill.arguments[0]
        chosen: dict[str, np.ndarray] = {}

        def release(w: WorldState) -> tuple[np.ndarray, float]:
            centre, half = box(w)
            if not chosen:
                z = height(w)
                xy, yaw = self._free_spot(w, obj, centre[:2], half[:2], z)
                chosen.update(relative=xy - centre[:2], yaw=np.array(yaw), z=np.array(z))
            xy = centre[:2] + chosen["relative"]
            return np.array([xy[0], xy[1], float(chosen["z"])]), float(chosen["yaw"])

        return self._release_sequence(release, withdraw)

    def _place_in_drawer(self) -> list[Callable[[WorldState], Waypoint]]:
        interior = self.geometry["drawer_interior"]

        def box(w: WorldState) -> tuple[np.ndarray, np.ndarray]:
            centre = np.asarray(interior["centre"], dtype=float) + self.grounding.drawer_interior_offset(w)
            return centre, np.asarray(interior["half_size"], dtype=float)

        # Let go with the fingertips over the drawer's walls and the objects already in it: low, the
        # open fingers would need 10 cm of the drawer's width.
        return self._place(box, lambda w: 0.10)

    def _place_on_shelf(self) -> list[Callable[[WorldState], Waypoint]]:
        obj = self.skill.arguments[0]
        top = self.geometry["shelf_top"]
        centre, half = np.asarray(top["centre"], dtype=float), np.asarray(top["half_size"], dtype=float)
        surface = centre[2] - half[2]

        def height(w: WorldState) -> float:
            """The held object's bottom just over the board: on the shelf's open edges an object
            dropped from higher can tip over (a finger dragging it as it opens) and roll off."""
            rotation = _rotation(_orientation(w, obj))
            bottom = w.objects[obj][2] - np.abs(rotation[2, :]) @ HALF_EXTENTS[obj]
            return surface + SHELF_DROP + float(w.tcp_position[2] - bottom)

        # Then back over the desk, high: the next skill's straight approach would come down across the
        # shelf, whose objects stand taller than its fingertips, and the cabinet beyond it.
        return self._place(lambda w: (centre, half), height, withdraw=True)

    def _place_yaws(self, obj: str, turned: float, half: np.ndarray) -> list[float]:
        """The hand yaws to put ``obj`` down at, best first: the operator's habit; a long object (the
        bar, turned by ``turned`` in the hand) along the container's longer side, else along its
        shorter one, each of the two equivalent hand yaws nearer the hand's now, so the hand turns as
        little as it can."""
        extents = HALF_EXTENTS[obj][:2]
        if abs(extents[0] - extents[1]) < 0.01:
            return [self.style.yaw_jitter]
        along_x = (0.0 if extents[0] > extents[1] else -math.pi / 2) - turned  # long axis along base x
        sides = [along_x + math.pi / 2, along_x] if half[1] > half[0] else [along_x, along_x + math.pi / 2]
        return [
            min(
                (y + self.style.yaw_jitter + k * math.pi for k in range(-2, 3)),
                key=lambda v: (abs(v) > MAX_HAND_YAW, abs(v - self._hand_yaw)),
            )
            for y in sides
        ]

    def _free_spot(
        self, w: WorldState, obj: str, centre: np.ndarray, half: np.ndarray, height: float
    ) -> tuple[np.ndarray, float]:
        """Where (TCP xy) and at which hand yaw to let go of ``obj`` in a container's box (centre, half
        sizes, xy), with the TCP at ``height``: the object's footprint PLACE_MARGIN inside the box and
        PLACE_GAP clear of the other objects', the hand with room among them, and both clear of the
        furniture the container is not part of (the cabinet over the back of the drawer).

        Of the spots that fit, the one nearest the operator's preferred spot, which is at one end of the
        box's long side: a container filled from the ends of its long side keeps a strip across its
        middle free, which the next object (the bar, across the whole drawer) needs. If none fits, the
        one that comes closest to fitting, the hand and the furniture first (in a drawer barely open,
        a bar held off its middle fits only nearer the front wall)."""
        furniture = [b for b in self.geometry.get("keep_out", {}).values() if not _in_footprint(centre, b)]
        own = HALF_EXTENTS[obj][:2]
        # where the object sits in the hand: off the TCP (hand frame), and turned
        hand = _yaw_axes(self._hand_yaw)
        held = hand.T @ (w.objects[obj][:2] - w.tcp_position[:2])
        turned = yaw_of(_orientation(w, obj)) - self._hand_yaw
        aim = self.style.spot.copy()  # in the box, out to an end of its long side
        aim[int(np.argmax(half))] = math.copysign(1.0, aim[int(np.argmax(half))])
        best: tuple[float, np.ndarray, float] | None = None  # score, TCP xy, yaw
        for yaw in self._place_yaws(obj, turned, half):
            axes = _yaw_axes(yaw + turned)
            room = np.maximum(half - np.abs(axes) @ own, 0.0)  # where the object's centre keeps it inside
            points = _lattice(centre, room, centre + np.maximum(room - PLACE_MARGIN, 0.0) * aim)
            tcp = points - _yaw_axes(yaw) @ held
            hard = self._hand_room(w, obj, tcp, yaw, height, furniture)
            for box in furniture:  # the object too: it is carried in at the cabinet's height
                edges = (np.asarray(box["centre"], dtype=float), np.eye(2), np.asarray(box["half_size"]))
                hard = np.minimum(hard, _footprint_gaps(points, axes, own, *edges))
            soft = np.min(room - np.abs(points - centre), axis=1) - PLACE_MARGIN
            for footprint, _ in _footprints(w, obj):
                soft = np.minimum(soft, _footprint_gaps(points, axes, own, *footprint) - PLACE_GAP)
            score = np.where(hard >= 0.0, soft, hard - 1.0)
            fits = np.flatnonzero(score >= 0.0)
            if len(fits):
                return tcp[fits[0]], yaw
            i = int(np.argmax(score))
            if best is None or score[i] > best[0]:
                best = (float(score[i]), tcp[i], yaw)
        assert best is not None
        return best[1], best[2]

    def _furniture(self, w: WorldState) -> list[dict[str, list[float]]]:
        """Footprints (x, y) the hand's housing must stay clear of low over the desk: the keep-out boxes,
        and the drawer and its knob, which stick out of the cabinet's the further it is open."""
        interior = self.geometry["drawer_interior"]
        drawer = (
            np.asarray(interior["centre"][:2], dtype=float) + self.grounding.drawer_interior_offset(w)[:2]
        )
        knob = self._handle(w)[:2] + np.array([-0.01, 0.0])
        return [
            *self.geometry.get("keep_out", {}).values(),
            {"centre": list(drawer), "half_size": list(np.asarray(interior["half_size"][:2]) + 0.015)},
            {"centre": list(knob), "half_size": [0.03, 0.035]},
        ]

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

    def _close_drawer(self) -> list[Callable[[WorldState], Waypoint]]:
        s = self.style
        # Pushed home against the stop, not just inside "closed": a learner imitating a push that ended
        # 4 mm inside the threshold stopped 1-5 mm short of it in most of its failures.
        pushed_home = 0.004
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

    def _push(self) -> list[Callable[[WorldState], Waypoint | None]]:
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
        obj, region = self.skill.arguments
        s = self.style
        box = self.geometry["regions"][region]
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
            axes = _rotation(_orientation(w, obj))[:2, :]
            along = np.abs(d @ axes)
            half = HALF_EXTENTS[obj]
            return float(half @ along), float(np.min(half / np.maximum(along, 1e-6)))

        def plan(w: WorldState) -> None:
            """Choose this stroke's aim, its start behind the object, and the hand's yaw."""
            o = w.objects[obj][:2]
            toward_robot = bool(o[0] > centre[0] + inner[0])
            # sideways: never toward +x, which would put the pusher beyond the workspace's near edge
            target = np.array([x_stop, o[1]]) if toward_robot else np.array([min(o[0], x_stop), goal[1]])
            d = _unit(target - o)
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
            furniture = self._furniture(w)
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
                    rooms = self._hand_room(w, obj, starts, yaw, z, furniture, fingers)
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
            d = _unit(stroke["aim"] - o)
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
                lateral = (
                    world.tcp_position[:2] + d * float(stroke["face"]) - o + d * (gap + extent(world, d)[1])
                )
                # advance only when on the line; beyond 1.2 cm off it, back out of contact
                advance = float(np.clip(speed * (1.0 - lateral_norm / 0.012), -speed, speed))
                velocity = _clip_norm(d * advance - 1.5 * lateral, speed)
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


def _hand_clearance(xy: np.ndarray, yaw: float, boxes: list[dict[str, list[float]]]) -> np.ndarray:
    """How far (m) the corners of the hand's footprint at each point of ``xy`` (..., 2) stay outside the
    footprints ``boxes`` (negative: inside one)."""
    axis = np.array([-math.sin(yaw), math.cos(yaw)])  # the finger axis (hand y) in the base frame
    across = np.array([math.cos(yaw), math.sin(yaw)])  # hand x
    corners = np.asarray(xy)[..., None, :] + np.array(
        [
            axis * a * HOUSING[1] + across * b
            for a in (-1.0, -0.5, 0.0, 0.5, 1.0)
            for b in (-HOUSING[0], HOUSING[0])
        ]
    )
    clearance = np.full(corners.shape[:-2], math.inf)
    for box in boxes:
        outside = np.abs(corners - np.asarray(box["centre"], dtype=float)) - np.asarray(
            box["half_size"], dtype=float
        )
        clearance = np.minimum(clearance, np.min(np.max(outside, axis=-1), axis=-1))
    return clearance


def _footprints(w: WorldState, skip: str) -> list[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], float]]:
    """The objects but ``skip`` seen from above, each its centre, its axes' xy (columns) and half
    extents; and how high its top is."""
    seen = []
    for name, position in w.objects.items():
        if name != skip and name in HALF_EXTENTS:
            rotation = _rotation(_orientation(w, name))
            half = HALF_EXTENTS[name]
            seen.append(
                ((position[:2], rotation[:2, :], half), float(position[2] + np.abs(rotation[2, :]) @ half))
            )
    return seen


def _in_footprint(xy: np.ndarray, box: dict[str, list[float]]) -> bool:
    return bool(
        np.all(
            np.abs(xy - np.asarray(box["centre"], dtype=float)) <= np.asarray(box["half_size"], dtype=float)
        )
    )


def _lattice(centre: np.ndarray, half: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Points PLACE_STEP apart through ``first`` within the box (``centre``, ``half``), nearest
    ``first`` first."""
    n = math.ceil(2 * float(np.max(half)) / PLACE_STEP)
    steps = np.arange(-n, n + 1) * PLACE_STEP
    points = first + np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2)
    points = points[np.all(np.abs(points - centre) <= half + 1e-9, axis=1)]
    return points[np.argsort(np.linalg.norm(points - first, axis=1), kind="stable")]


def _footprint_gaps(
    points: np.ndarray,
    axes: np.ndarray,
    half: np.ndarray,
    centre: np.ndarray,
    other_axes: np.ndarray,
    other_half: np.ndarray,
) -> np.ndarray:
    """The gap (m) between a footprint at each of ``points`` and another at ``centre``, each a box
    seen from above: its axes' xy (columns of ``axes``) and half extents. The widest gap along their
    edges' normals and the line between centres: a lower bound on the distance, negative where they
    overlap."""
    columns = np.concatenate([axes, other_axes], axis=1).T
    normals = [c / np.linalg.norm(c) for c in columns if np.linalg.norm(c) > 0.3]  # not a box's upright axis
    offset = points - centre
    between = offset / np.maximum(np.linalg.norm(offset, axis=1, keepdims=True), 1e-9)
    directions = np.concatenate(
        [np.broadcast_to(normals, (len(points), len(normals), 2)), between[:, None]], 1
    )
    reach = np.abs(directions @ axes) @ half + np.abs(directions @ other_axes) @ other_half
    return np.max(np.abs(np.einsum("nmk,nk->nm", directions, offset)) - reach, axis=1)


def _orientation(w: WorldState, obj: str) -> np.ndarray:
    return w.orientations.get(obj, np.array([0.0, 0.0, 0.0, 1.0]))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-6)


def _yaw_axes(yaw: float) -> np.ndarray:
    """The xy axes (columns) of a frame turned by ``yaw`` about base z."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s], [s, c]])


def _rotation(quat: np.ndarray) -> np.ndarray:
    """The rotation matrix of an xyzw quaternion: its columns are the body's axes."""
    x, y, z, w = quat
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
