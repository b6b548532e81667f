"""place_in_drawer and place_on_shelf: carry the held object over a free spot, lower it, let go."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from meta_robot.skills.controllers.base import (
    HALF_EXTENTS,
    MAX_HAND_YAW,
    OPEN,
    PLACE_GAP,
    PLACE_MARGIN,
    SHELF_DROP,
    SkillContext,
    Waypoint,
    yaw_of,
)
from meta_robot.skills.controllers.hand import (
    footprint_gaps,
    footprints,
    hand_room,
    in_footprint,
    lattice,
    object_orientation,
    rotation_matrix,
    yaw_axes,
)
from meta_robot.skills.world import WorldState


def place_in_drawer(op: SkillContext) -> list[Callable[[WorldState], Waypoint]]:
    interior = op.geometry["drawer_interior"]

    def box(w: WorldState) -> tuple[np.ndarray, np.ndarray]:
        centre = np.asarray(interior["centre"], dtype=float) + op.grounding.drawer_interior_offset(w)
        return centre, np.asarray(interior["half_size"], dtype=float)

    # Let go with the fingertips over the drawer's walls and the objects already in it: low, the
    # open fingers would need 10 cm of the drawer's width.
    return place(op, box, lambda w: 0.10)


def place_on_shelf(op: SkillContext) -> list[Callable[[WorldState], Waypoint]]:
    obj = op.skill.arguments[0]
    top = op.geometry["shelf_top"]
    centre, half = np.asarray(top["centre"], dtype=float), np.asarray(top["half_size"], dtype=float)
    surface = centre[2] - half[2]

    def height(w: WorldState) -> float:
        """The held object's bottom just over the board: on the shelf's open edges an object
        dropped from higher can tip over (a finger dragging it as it opens) and roll off."""
        rotation = rotation_matrix(object_orientation(w, obj))
        bottom = w.objects[obj][2] - np.abs(rotation[2, :]) @ HALF_EXTENTS[obj]
        return surface + SHELF_DROP + float(w.tcp_position[2] - bottom)

    # Then back over the desk, high: the next skill's straight approach would come down across the
    # shelf, whose objects stand taller than its fingertips, and the cabinet beyond it.
    return place(op, lambda w: (centre, half), height, withdraw=True)


def place(
    op: SkillContext,
    box: Callable[[WorldState], tuple[np.ndarray, np.ndarray]],
    height: Callable[[WorldState], float],
    withdraw: bool = False,
) -> list[Callable[[WorldState], Waypoint]]:
    """Put the held object down in a container, the box ``box(w)`` (centre, half sizes; the drawer's
    moves with it), letting go with the TCP at ``height(w)``. Both are chosen once, as the carry
    starts, the spot relative to the box. ``withdraw``: then back over the desk."""
    obj = op.skill.arguments[0]
    chosen: dict[str, np.ndarray] = {}

    def release(w: WorldState) -> tuple[np.ndarray, float]:
        centre, half = box(w)
        if not chosen:
            z = height(w)
            xy, yaw = free_spot(op, w, obj, centre[:2], half[:2], z)
            chosen.update(relative=xy - centre[:2], yaw=np.array(yaw), z=np.array(z))
        xy = centre[:2] + chosen["relative"]
        return np.array([xy[0], xy[1], float(chosen["z"])]), float(chosen["yaw"])

    return release_sequence(op, release, withdraw)


def release_sequence(
    op: SkillContext, release: Callable[[WorldState], tuple[np.ndarray, float]], withdraw: bool
) -> list[Callable[[WorldState], Waypoint]]:
    """Carry the held object over ``release(w)`` (TCP position, hand yaw), lower it there, let go;
    ``withdraw``: then take the hand back over the desk."""
    s = op.style

    def rise(w: WorldState) -> Waypoint | None:
        """Up to the carrying height first: on the way over, the held object stays above what
        stands in the container (lifted off the desk, it would sweep through the shelf's edge)."""
        p, yaw = release(w)
        z = max(p[2] + 0.08, s.lift_height)
        if w.tcp_position[2] > z - 0.02:
            return None
        return Waypoint(np.array([*w.tcp_position[:2], z]), yaw, s.speed, tolerance=0.012, needs_grasp=True)

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
        return Waypoint(w.tcp_position.copy(), release(w)[1], 0.02, tolerance=1.0, gripper=OPEN, dwell=0.6)

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
        desk = op.geometry["desk_top"]["centre"]
        p = np.array([desk[0], desk[1], w.tcp_position[2]])
        return Waypoint(p, release(w)[1], s.speed * 1.5, tolerance=0.03)

    return [rise, carry, lower, let_go, retreat] + ([back] if withdraw else [])


def free_spot(
    op: SkillContext, w: WorldState, obj: str, centre: np.ndarray, half: np.ndarray, height: float
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
    furniture = [b for b in op.geometry.get("keep_out", {}).values() if not in_footprint(centre, b)]
    own = HALF_EXTENTS[obj][:2]
    # where the object sits in the hand: off the TCP (hand frame), and turned
    hand = yaw_axes(op.hand_yaw)
    held = hand.T @ (w.objects[obj][:2] - w.tcp_position[:2])
    turned = yaw_of(object_orientation(w, obj)) - op.hand_yaw
    aim = op.style.spot.copy()  # in the box, out to an end of its long side
    aim[int(np.argmax(half))] = math.copysign(1.0, aim[int(np.argmax(half))])
    best: tuple[float, np.ndarray, float] | None = None  # score, TCP xy, yaw
    for yaw in place_yaws(op, obj, turned, half):
        axes = yaw_axes(yaw + turned)
        room = np.maximum(half - np.abs(axes) @ own, 0.0)  # where the object's centre keeps it inside
        points = lattice(centre, room, centre + np.maximum(room - PLACE_MARGIN, 0.0) * aim)
        tcp = points - yaw_axes(yaw) @ held
        hard = hand_room(op, w, obj, tcp, yaw, height, furniture)
        for box in furniture:  # the object too: it is carried in at the cabinet's height
            edges = (np.asarray(box["centre"], dtype=float), np.eye(2), np.asarray(box["half_size"]))
            hard = np.minimum(hard, footprint_gaps(points, axes, own, *edges))
        soft = np.min(room - np.abs(points - centre), axis=1) - PLACE_MARGIN
        for footprint, _ in footprints(w, obj):
            soft = np.minimum(soft, footprint_gaps(points, axes, own, *footprint) - PLACE_GAP)
        score = np.where(hard >= 0.0, soft, hard - 1.0)
        fits = np.flatnonzero(score >= 0.0)
        if len(fits):
            return tcp[fits[0]], yaw
        i = int(np.argmax(score))
        if best is None or score[i] > best[0]:
            best = (float(score[i]), tcp[i], yaw)
    assert best is not None
    return best[1], best[2]


def place_yaws(op: SkillContext, obj: str, turned: float, half: np.ndarray) -> list[float]:
    """The hand yaws to put ``obj`` down at, best first: the operator's habit; a long object (the
    bar, turned by ``turned`` in the hand) along the container's longer side, else along its
    shorter one, each of the two equivalent hand yaws nearer the hand's now, so the hand turns as
    little as it can."""
    extents = HALF_EXTENTS[obj][:2]
    if abs(extents[0] - extents[1]) < 0.01:
        return [op.style.yaw_jitter]
    along_x = (0.0 if extents[0] > extents[1] else -math.pi / 2) - turned  # long axis along base x
    sides = [along_x + math.pi / 2, along_x] if half[1] > half[0] else [along_x, along_x + math.pi / 2]
    return [
        min(
            (y + op.style.yaw_jitter + k * math.pi for k in range(-2, 3)),
            key=lambda v: (abs(v) > MAX_HAND_YAW, abs(v - op.hand_yaw)),
        )
        for y in sides
    ]
