"""PDDL goals, domain and problem text, all generated from the skill registry.

Nothing about the workcell is written here: types, objects, predicates and one action per skill come
from ``config/skills.yaml``, so adding a skill there is all it takes for the planner to use it. The
text is plain STRIPS with typing (``:negative-preconditions`` only when a precondition or the goal
needs it), which both Fast Downward and pyperplan read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meta_robot.planning.symbolic import Atom, PlanningError, all_atoms, atom_text, check_atom, check_state
from meta_robot.skills.registry import Literal, Registry

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
# PDDL's built-in root type (and number, for numeric fluents): a registry type of that name is written
# with a suffix, otherwise every other type would be one of its subtypes and e.g. `?o - object` would
# also accept regions.
_RESERVED_TYPES = frozenset({"object", "number"})
_KEYWORDS = frozenset({"and", "or", "not", "imply", "either", "exists", "forall", "when", "define", "-"})
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class Goal:
    """A conjunction of ground literals; ``text`` is its canonical PDDL."""

    literals: tuple[Literal, ...]
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def has_negations(self) -> bool:
        return any(lit.negated for lit in self.literals)

    @classmethod
    def of(cls, literals: Iterable[Literal]) -> Goal:
        """The goal of these literals (duplicates dropped), with its canonical text."""
        literals = tuple(dict.fromkeys(literals))
        if len(literals) == 1:
            return cls(literals, str(literals[0]))
        return cls(literals, "(and " + " ".join(str(lit) for lit in literals) + ")")


def parse_goal(registry: Registry, text: str) -> Goal:
    """Parse ``(pred obj ...)``, ``(not (pred ...))`` or ``(and literal ...)`` against the registry.

    Every predicate, arity, object and object type is checked; a mistake raises
    :class:`PlanningError` naming it (and listing the known predicates or objects).
    """
    where = f"goal {text.strip()!r}"
    tree = _parse_sexpr(text, where)
    literals = _literals(tree, where)
    if not literals:
        raise PlanningError(f"{where} is empty; give at least one literal, e.g. (in_drawer red_cube)")
    for lit in literals:
        check_atom(registry, lit.atom, where)
    return Goal.of(literals)


def domain_pddl(registry: Registry, *, negative_preconditions: bool = False) -> str:
    """The PDDL domain: the registry's types, predicates and one action per skill.

    ``negative_preconditions`` adds that requirement (needed for a goal with negated literals); it is
    added anyway when a skill has a negated precondition.
    """
    names = [registry.domain, *registry.types, *registry.predicates, *registry.skills]
    for name in names:
        _check_identifier(name, registry)
    needs_negative = negative_preconditions or any(
        lit.negated for spec in registry.skills.values() for lit in spec.preconditions
    )
    requirements = ":strips :typing" + (" :negative-preconditions" if needs_negative else "")
    lines = [
        f"; generated from {registry.source or 'the skill registry'} by meta_robot.planning.pddl",
        f"(define (domain {registry.domain})",
        f"  (:requirements {requirements})",
        f"  (:types {' '.join(pddl_type(t) for t in registry.types)})",
        "  (:predicates",
    ]
    for name, spec in registry.predicates.items():
        params = "".join(f" ?a{i} - {pddl_type(t)}" for i, t in enumerate(spec.parameter_types))
        lines.append(f"    ({name}{params})")
    lines[-1] += ")"
    for name, spec in registry.skills.items():
        params = " ".join(f"?{var} - {pddl_type(t)}" for var, t in spec.parameters)
        lines += [
            f"  (:action {name}",
            f"    :parameters ({params})",
            f"    :precondition {_conjunction(spec.preconditions)}",
            f"    :effect {_conjunction(spec.effects)})",
        ]
    lines.append(")")
    return "\n".join(lines) + "\n"


def problem_pddl(registry: Registry, state: Iterable[Atom], goal: Goal, name: str = "task") -> str:
    """The PDDL problem: the registry's objects, the true atoms of ``state`` and ``goal``."""
    _check_identifier(name, registry)
    true = check_state(registry, state)
    order = {atom: i for i, atom in enumerate(all_atoms(registry))}
    objects = " ".join(
        " ".join(objects) + f" - {pddl_type(type_name)}"
        for type_name, objects in registry.types.items()
        if objects
    )
    init = " ".join(atom_text(atom) for atom in sorted(true, key=order.__getitem__))
    return (
        f"(define (problem {name})\n"
        f"  (:domain {registry.domain})\n"
        f"  (:objects {objects})\n"
        f"  (:init {init})\n"
        f"  (:goal {_conjunction(goal.literals)}))\n"
    )


def pddl_type(type_name: str) -> str:
    """The PDDL name of a registry type (``object`` clashes with PDDL's root type)."""
    return f"{type_name}_type" if type_name in _RESERVED_TYPES else type_name


def _conjunction(literals: Sequence[Literal]) -> str:
    return "(and" + "".join(f" {lit}" for lit in literals) + ")"


def _check_identifier(name: str, registry: Registry) -> None:
    if name in _KEYWORDS or not _IDENTIFIER.match(name):
        raise PlanningError(
            f"'{name}' (in {registry.source or 'the skill registry'}) cannot be a PDDL name: "
            "use lower-case letters, digits and '_', starting with a letter, and no PDDL keyword"
        )


def _parse_sexpr(text: str, where: str) -> list | str:
    tokens = _TOKEN.findall(text)
    if not tokens:
        raise PlanningError(f"{where} is empty; give a literal like (in_drawer red_cube)")
    stack: list[list] = [[]]
    for token in tokens:
        if token == "(":
            stack.append([])
        elif token == ")":
            if len(stack) == 1:
                raise PlanningError(f"{where} has an unmatched ')'")
            closed = stack.pop()
            stack[-1].append(closed)
        else:
            stack[-1].append(token)
    if len(stack) != 1:
        raise PlanningError(f"{where} has {len(stack) - 1} unclosed '('")
    if len(stack[0]) != 1 or not isinstance(stack[0][0], list):
        raise PlanningError(f"{where} must be one parenthesised expression, e.g. (and (p a) (q b))")
    return stack[0][0]


def _literals(tree: list | str, where: str) -> list[Literal]:
    """Flatten ``(and ...)`` (nested too) into literals; atoms and ``(not atom)`` only."""
    if not isinstance(tree, list) or not tree:
        raise PlanningError(f"{where}: '{_show(tree)}' is not a literal like (holding red_cube)")
    head = tree[0]
    if head == "and":
        return [lit for part in tree[1:] for lit in _literals(part, where)]
    if head == "not":
        if len(tree) != 2 or not _is_atom(tree[1]):
            raise PlanningError(f"{where}: '{_show(tree)}' must negate one atom, e.g. (not (drawer_open))")
        return [Literal(tree[1][0], tuple(tree[1][1:]), negated=True)]
    if head in _KEYWORDS:
        raise PlanningError(f"{where}: '{head}' is not supported; use (and ...) of literals and (not ...)")
    if not _is_atom(tree):
        raise PlanningError(f"{where}: '{_show(tree)}' is not a literal like (holding red_cube)")
    return [Literal(tree[0], tuple(tree[1:]))]


def _is_atom(tree: list | str) -> bool:
    return isinstance(tree, list) and bool(tree) and all(isinstance(part, str) for part in tree)


def _show(tree: list | str) -> str:
    return tree if isinstance(tree, str) else "(" + " ".join(_show(part) for part in tree) + ")"
