"""Where the hand can go: grasps of each object, the room the hand's housing and fingers have among
the furniture and the other objects, and the footprint geometry behind both (base frame, metres)."""

from __future__ import annotations

import math

import numpy as np

from meta_robot.skills.controllers.base import (
    FINGERTIP_DEPTH,
    GRASP_SYMMETRY,
    GRASP_YAW_OFFSET,
    HALF_EXTENTS,
    HAND_GAP,
    HOUSING,
    HOUSING_HEIGHT,
    MAX_HAND_YAW,
    OPEN_FINGERS,
    PLACE_STEP,
    SkillContext,
    nearest_equivalent,
    yaw_of,
)
from meta_robot.skills.world import WorldState


def grasp_yaw(op: SkillContext, world: WorldState, obj: str, turn: float = 0.0) -> float:
    """The hand's yaw grasping ``obj``: the grasp nearest the operator's habit, turned by ``turn``."""
    yaw = yaw_of(object_orientation(world, obj)) + GRASP_YAW_OFFSET.get(obj, 0.0)
    return nearest_equivalent(yaw, GRASP_SYMMETRY.get(obj, math.pi / 2), op.style.yaw_jitter) + turn


def grasp_choice(op: SkillContext, w: WorldState, obj: str, height: float) -> tuple[float, float]:
    """How far to turn the hand from the habitual grasp at ``height`` to another equivalent one (the
    cube's other faces, any yaw round the cylinder), and to shift it along a long object (the bar,
    up to 2 cm off its middle), where the open fingers would land on another object, or the 20 cm
    housing on furniture (the cabinet, the pulled-out drawer beside an object at the desk's edge)
    or a taller object: as little as clears them."""
    symmetry = GRASP_SYMMETRY.get(obj, math.pi / 2)
    step = symmetry if symmetry > 0.0 else math.radians(15)
    habit = grasp_yaw(op, w, obj)
    turns = [k * step for k in range(-6, 7) if abs(k * step) <= math.pi / 2 + 1e-6]
    turns = [t for t in turns if abs(habit + t) <= MAX_HAND_YAW] or [0.0]
    extents = HALF_EXTENTS[obj][:2]
    shifts = [0.0, -0.01, 0.01, -0.02, 0.02] if abs(extents[0] - extents[1]) > 0.01 else [0.0]
    choices = sorted(
        ((t, d) for t in turns for d in shifts), key=lambda c: (abs(c[1]), abs(c[0]), abs(habit + c[0]))
    )
    if len(choices) == 1:
        return choices[0]
    furniture = furniture_footprints(op, w)

    def room(choice: tuple[float, float]) -> float:
        tcp = grasp_point(op, w, obj, choice[1])[None]
        return float(hand_room(op, w, obj, tcp, habit + choice[0], height, furniture)[0])

    rooms = {c: room(c) for c in choices}
    return next((c for c in choices if rooms[c] > 0.0), max(choices, key=lambda c: rooms[c]))


def grasp_point(op: SkillContext, w: WorldState, obj: str, shift: float) -> np.ndarray:
    """The object's middle (xy), or ``shift`` along its long axis from it."""
    if shift == 0.0:
        return w.objects[obj][:2].copy()
    axes = rotation_matrix(object_orientation(w, obj))[:2, :2]
    return w.objects[obj][:2] + shift * unit(axes[:, int(np.argmax(HALF_EXTENTS[obj][:2]))])


def hand_room(
    op: SkillContext,
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
    room = hand_clearance(tcp, yaw, furniture)
    hand = yaw_axes(yaw)
    for footprint, top in footprints(w, obj):
        for part, bottom in (
            (HOUSING, height + HOUSING_HEIGHT),
            (fingers, height - FINGERTIP_DEPTH),
        ):
            if top > bottom:
                room = np.minimum(room, footprint_gaps(tcp, hand, part, *footprint) - HAND_GAP)
    return room


def furniture_footprints(op: SkillContext, w: WorldState) -> list[dict[str, list[float]]]:
    """Footprints (x, y) the hand's housing must stay clear of low over the desk: the keep-out boxes,
    and the drawer and its knob, which stick out of the cabinet's the further it is open."""
    interior = op.geometry["drawer_interior"]
    drawer = np.asarray(interior["centre"][:2], dtype=float) + op.grounding.drawer_interior_offset(w)[:2]
    knob = drawer_handle(op, w)[:2] + np.array([-0.01, 0.0])
    return [
        *op.geometry.get("keep_out", {}).values(),
        {"centre": list(drawer), "half_size": list(np.asarray(interior["half_size"][:2]) + 0.015)},
        {"centre": list(knob), "half_size": [0.03, 0.035]},
    ]


def drawer_handle(op: SkillContext, w: WorldState) -> np.ndarray:
    return np.asarray(
        op.geometry["drawer_handle"]["centre"], dtype=float
    ) + op.grounding.drawer_interior_offset(w)


def hand_clearance(xy: np.ndarray, yaw: float, boxes: list[dict[str, list[float]]]) -> np.ndarray:
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


def footprints(w: WorldState, skip: str) -> list[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], float]]:
    """The objects but ``skip`` seen from above, each its centre, its axes' xy (columns) and half
    extents; and how high its top is."""
    seen = []
    for name, position in w.objects.items():
        if name != skip and name in HALF_EXTENTS:
            rotation = rotation_matrix(object_orientation(w, name))
            half = HALF_EXTENTS[name]
            seen.append(
                ((position[:2], rotation[:2, :], half), float(position[2] + np.abs(rotation[2, :]) @ half))
            )
    return seen


def in_footprint(xy: np.ndarray, box: dict[str, list[float]]) -> bool:
    return bool(
        np.all(
            np.abs(xy - np.asarray(box["centre"], dtype=float)) <= np.asarray(box["half_size"], dtype=float)
        )
    )


def lattice(centre: np.ndarray, half: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Points PLACE_STEP apart through ``first`` within the box (``centre``, ``half``), nearest
    ``first`` first."""
    n = math.ceil(2 * float(np.max(half)) / PLACE_STEP)
    steps = np.arange(-n, n + 1) * PLACE_STEP
    points = first + np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2)
    points = points[np.all(np.abs(points - centre) <= half + 1e-9, axis=1)]
    return points[np.argsort(np.linalg.norm(points - first, axis=1), kind="stable")]


def footprint_gaps(
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


def object_orientation(w: WorldState, obj: str) -> np.ndarray:
    return w.orientations.get(obj, np.array([0.0, 0.0, 0.0, 1.0]))


def unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-6)


def yaw_axes(yaw: float) -> np.ndarray:
    """The xy axes (columns) of a frame turned by ``yaw`` about base z."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s], [s, c]])


def rotation_matrix(quat: np.ndarray) -> np.ndarray:
    """The rotation matrix of an xyzw quaternion: its columns are the body's axes."""
    x, y, z, w = quat
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
