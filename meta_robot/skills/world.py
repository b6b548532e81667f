"""Privileged world state and the predicates of the registry evaluated on it.

This is the simulator's ground truth: the scripted operator and episode labels use it, and so does
evaluation. Production nodes (the executive) never read it; they estimate predicates from images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meta_robot.skills.registry import GroundSkill, Literal, Registry, RegistryError

DRAWER_JOINT = "drawer_slide"


@dataclass(frozen=True)
class WorldState:
    """Object positions (base frame), the drawer's travel, and the hand."""

    objects: Mapping[str, np.ndarray]  # name -> (x, y, z)
    drawer_opening: float  # m pulled out
    tcp_position: np.ndarray
    gripper_width: float
    gripper_grasped: bool  # the fingers stopped on something
    orientations: Mapping[str, np.ndarray] = field(default_factory=dict)  # name -> (x, y, z, w)


def _in_box(point: np.ndarray, box: Mapping[str, Any], offset: np.ndarray | None = None) -> bool:
    centre = np.asarray(box["centre"], dtype=float) + (0.0 if offset is None else offset)
    return bool(np.all(np.abs(np.asarray(point) - centre) <= np.asarray(box["half_size"], dtype=float)))


class Grounding:
    """Evaluates the registry's predicates on a WorldState, using the registry's geometry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.geometry = registry.geometry
        self._functions: dict[str, Callable[..., bool]] = {
            "hand_empty": self.hand_empty,
            "holding": self.holding,
            "drawer_open": self.drawer_open,
            "drawer_closed": self.drawer_closed,
            "on_desk": self.on_desk,
            "in_drawer": self.in_drawer,
            "on_shelf": self.on_shelf,
            "in_region": self.in_region,
        }
        missing = set(registry.predicates) - set(self._functions)
        if missing:
            raise RegistryError(f"predicates without a grounding in {__name__}: {sorted(missing)}")

    # --- predicates ---------------------------------------------------------------------------
    def holding(self, w: WorldState, obj: str) -> bool:
        near = np.linalg.norm(w.objects[obj] - w.tcp_position) <= self.geometry["hold_radius"]
        return bool(w.gripper_grasped and near)

    def hand_empty(self, w: WorldState) -> bool:
        return not any(self.holding(w, obj) for obj in w.objects)

    def drawer_open(self, w: WorldState) -> bool:
        return w.drawer_opening >= self.geometry["drawer_open_at"]

    def drawer_closed(self, w: WorldState) -> bool:
        return w.drawer_opening <= self.geometry["drawer_closed_at"]

    def drawer_interior_offset(self, w: WorldState) -> np.ndarray:
        return np.asarray(self.geometry["drawer_interior"]["axis"], dtype=float) * w.drawer_opening

    def in_drawer(self, w: WorldState, obj: str) -> bool:
        box = self.geometry["drawer_interior"]
        return _in_box(w.objects[obj], box, self.drawer_interior_offset(w)) and not self.holding(w, obj)

    def on_shelf(self, w: WorldState, obj: str) -> bool:
        return _in_box(w.objects[obj], self.geometry["shelf_top"]) and not self.holding(w, obj)

    def on_desk(self, w: WorldState, obj: str) -> bool:
        return (
            _in_box(w.objects[obj], self.geometry["desk_top"])
            and not self.in_drawer(w, obj)
            and not self.holding(w, obj)
        )

    def in_region(self, w: WorldState, obj: str, region: str) -> bool:
        regions = self.geometry["regions"]
        if region not in regions:
            raise RegistryError(f"region '{region}' has no geometry in the registry")
        return _in_box(w.objects[obj], regions[region]) and not self.holding(w, obj)

    # --- literals and skills ------------------------------------------------------------------
    def holds(self, w: WorldState, literal: Literal) -> bool:
        """Whether a ground literal is true in ``w``."""
        value = self._functions[literal.predicate](w, *literal.arguments)
        return value != literal.negated

    def unmet(self, w: WorldState, literals: Iterable[Literal]) -> list[Literal]:
        """The literals that do not hold (empty: all hold)."""
        return [lit for lit in literals if not self.holds(w, lit)]

    def succeeded(self, w: WorldState, skill: GroundSkill) -> bool:
        """A skill succeeded when every one of its effects holds."""
        return not self.unmet(w, skill.effects)

    def atoms(self, w: WorldState) -> dict[tuple[str, ...], bool]:
        """Every ground atom of the registry and its truth value in ``w``."""
        values: dict[tuple[str, ...], bool] = {}
        for name, spec in self.registry.predicates.items():
            combos: list[tuple[str, ...]] = [()]
            for type_name in spec.parameter_types:
                combos = [c + (o,) for c in combos for o in self.registry.types[type_name]]
            for args in combos:
                if all(a in w.objects or self.registry.type_of(a) != "object" for a in args):
                    values[(name, *args)] = self.holds(w, Literal(name, args))
        return values
