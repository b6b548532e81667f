"""Symbolic states over the skill registry's predicates: atoms, literals and STRIPS progression.

A state is the frozenset of the ground atoms that are true (closed world: everything else is false).
The executive builds it from the success classifiers; the planner reasons over it; the same
``progress`` checks a returned plan before a robot executes any of it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from meta_robot.skills.registry import GroundSkill, Literal, Registry

Atom = tuple[str, ...]
"""A ground atom: ``("holding", "red_cube")``, ``("drawer_open",)``."""

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_ATOM_TEXT = re.compile(r"^\(\s*([^\s()]+)((?:\s+[^\s()]+)*)\s*\)$")


class PlanningError(ValueError):
    """Base of every planning error; the message says what to fix."""


def atom_text(atom: Atom) -> str:
    """``("holding", "red_cube")`` -> ``"(holding red_cube)"``."""
    return "(" + " ".join(atom) + ")"


def parse_atom(text: str) -> Atom:
    """``"(holding red_cube)"`` -> ``("holding", "red_cube")``; the inverse of :func:`atom_text`."""
    match = _ATOM_TEXT.match(text.strip())
    if match is None:
        raise PlanningError(f"'{text}' is not a ground atom like (holding red_cube) or (drawer_open)")
    atom = (match.group(1), *match.group(2).split())
    bad = [part for part in atom if not _NAME.match(part)]
    if bad:
        raise PlanningError(f"'{text}' is not a ground atom: {bad} are not plain lower-case names")
    return atom


def holds(state: frozenset[Atom], literals: Iterable[Literal]) -> bool:
    """Whether every literal is true in ``state`` (a negated literal: its atom is absent)."""
    return all((lit.atom in state) != lit.negated for lit in literals)


def unmet(state: frozenset[Atom], literals: Iterable[Literal]) -> list[Literal]:
    """The literals that are false in ``state``, in their order."""
    return [lit for lit in literals if (lit.atom in state) == lit.negated]


def progress(state: Iterable[Atom], skill: GroundSkill) -> frozenset[Atom]:
    """The state after ``skill`` (STRIPS: delete the negated effects, then add the positive ones).

    Preconditions are not checked here; use ``holds(state, skill.preconditions)``.
    """
    deleted = {lit.atom for lit in skill.effects if lit.negated}
    added = {lit.atom for lit in skill.effects if not lit.negated}
    return frozenset((set(state) - deleted) | added)


def all_atoms(registry: Registry) -> list[Atom]:
    """Every ground atom of the registry's predicates over its typed objects.

    Ordered by predicate (registry order), then by the objects' registry order.
    """
    atoms: list[Atom] = []
    for name, spec in registry.predicates.items():
        domains = [registry.types[type_name] for type_name in spec.parameter_types]
        atoms.extend((name, *args) for args in itertools.product(*domains))
    return atoms


def check_atom(registry: Registry, atom: Atom, where: str = "") -> None:
    """Raise :class:`PlanningError` unless ``atom`` is a well-typed ground atom of the registry.

    The message names the unknown predicate or object (and lists the known ones), or the wrong arity
    or type. ``where`` prefixes it (e.g. ``"goal (and ...)"``).
    """
    prefix = f"{where}: " if where else ""
    if not atom or not all(isinstance(part, str) for part in atom):
        raise PlanningError(f"{prefix}{atom!r} is not an atom like ('holding', 'red_cube')")
    predicate, arguments = atom[0], atom[1:]
    if predicate not in registry.predicates:
        raise PlanningError(
            f"{prefix}unknown predicate '{predicate}' in {atom_text(atom)}; "
            f"known predicates: {', '.join(registry.predicates)}"
        )
    wanted = registry.predicates[predicate].parameter_types
    if len(arguments) != len(wanted):
        signature = " ".join(wanted) or "no arguments"
        raise PlanningError(
            f"{prefix}{atom_text(atom)} has {len(arguments)} argument(s); "
            f"'{predicate}' takes {len(wanted)} ({signature})"
        )
    for position, (arg, type_name) in enumerate(zip(arguments, wanted, strict=True), start=1):
        if arg.startswith("?"):
            raise PlanningError(f"{prefix}{atom_text(atom)} has a variable {arg}; use object names")
        owner = next((t for t, objects in registry.types.items() if arg in objects), None)
        if owner is None:
            known = ", ".join(o for objects in registry.types.values() for o in objects)
            raise PlanningError(
                f"{prefix}unknown object '{arg}' in {atom_text(atom)}; known objects: {known}"
            )
        if owner != type_name:
            raise PlanningError(
                f"{prefix}{atom_text(atom)}: argument {position} of '{predicate}' must be a "
                f"{type_name} ({', '.join(registry.types[type_name])}); '{arg}' is a {owner}"
            )


def check_state(registry: Registry, state: Iterable[Atom]) -> frozenset[Atom]:
    """``state`` as a frozenset, every atom checked with :func:`check_atom`."""
    state = frozenset(tuple(atom) for atom in state)
    for atom in sorted(state):
        check_atom(registry, atom, "state")
    return state
