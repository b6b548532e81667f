"""How the executive is set up from its parameters, without ROS: the parameters themselves (the node
declares them), the state estimator's one-of groups and occlusions, and the planner's warm-up."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from meta_robot.core.params import param
from meta_robot.planning.planner import Planner
from meta_robot.planning.state_estimation import Occlusion, StateEstimator
from meta_robot.planning.symbolic import Atom, PlanningError, all_atoms, parse_atom
from meta_robot.planning.tasks import Task
from meta_robot.skills.registry import Registry


@dataclass(frozen=True)
class ExecutiveParameters:
    """The executive's parameters (config/executive.yaml sets only what differs)."""

    skill_action: str = param("policy/execute_skill", "the ExecuteSkill server that runs each step")
    planner: str = param(
        "auto", "auto (Fast Downward when installed, else pyperplan), fast-downward, pyperplan"
    )
    planning_time_limit: float = param(10.0, "s per plan; over it the task fails with a planner timeout")
    state_window: int = param(5, "classifier frames voted over for the state after each skill")
    state_timeout: float = param(10.0, "s to wait for those frames before failing the task")
    max_skills: int = param(20, "skill executions (retries included) for a raw PDDL goal")
    max_replans: int = param(5, "replans after the world stopped matching the plan")
    skill_grace: float = param(15.0, "s past a skill's registry timeout before the executive cancels it")
    registry: str = param("", "skill registry file; empty: config/skills.yaml")
    tasks: str = param("", "task file; empty: config/tasks.yaml")
    place_predicates: tuple[str, ...] = param(
        ("holding", "on_desk", "in_drawer", "on_shelf"),
        "every object is in exactly one of these places; placed nowhere, it takes its likeliest",
    )
    exclusive_atoms: tuple[str, ...] = param(
        ("(drawer_open)", "(drawer_closed)"), "atoms of which one holds; undecided, the likelier is taken"
    )
    hand_atoms: tuple[str, ...] = param(
        ("(hand_empty)", "(holding ?object)"), "the hand holds one object or nothing (?type: every object)"
    )
    occlusions: tuple[str, ...] = param(
        ("(drawer_closed) hides in_drawer",),
        "what the camera cannot see keeps its belief: (ATOM) hides PREDICATE",
    )


def ground_atoms(registry: Registry, texts: Iterable[str]) -> list[Atom]:
    """``(holding ?object)`` -> one atom per object of that type; plain atoms as they are."""
    atoms: list[Atom] = []
    for text in texts:
        head, *args = str(text).strip("() ").split()
        combos: list[tuple[str, ...]] = [()]
        for arg in args:
            values = registry.types[arg[1:]] if arg.startswith("?") else (arg,)
            combos = [c + (v,) for c in combos for v in values]
        atoms += [(head, *c) for c in combos]
    return atoms


def state_estimator(registry: Registry, p: ExecutiveParameters) -> StateEstimator:
    """The estimator the parameters describe: every object in one place, one of each exclusive group,
    the hand holding one thing or nothing, and what a closed drawer hides."""
    unknown = [q for q in p.place_predicates if q not in registry.predicates]
    if unknown:
        raise ValueError(f"place_predicates {unknown} are not predicates of the registry")
    one_of: list[Sequence[Atom]] = [
        [(q, obj) for q in p.place_predicates] for obj in registry.types.get("object", ())
    ]
    one_of.append([parse_atom(a) for a in p.exclusive_atoms])
    one_of.append(ground_atoms(registry, p.hand_atoms))
    return StateEstimator(p.state_window, one_of, [Occlusion.parse(o) for o in p.occlusions])


def warm_up(planner: Planner, tasks: Iterable[Task]) -> str:
    """Plan one task from a tidy start so the planner's import and first search are paid before the
    first goal (unified-planning's import alone takes seconds); returns the task's name."""
    tidy = ("hand_empty", "drawer_closed", "on_desk")
    start = frozenset(a for a in all_atoms(planner.registry) if a[0] in tidy)
    for task in tasks:
        try:
            planner.plan(start, task.goal)
            return task.name
        except PlanningError:
            continue
    return "nothing (no task plans from a tidy desk)"
