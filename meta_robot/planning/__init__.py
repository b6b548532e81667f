"""Symbolic task planning over the skill registry: states, PDDL, planners and named tasks.

Pure Python, no ROS. Importing this package is cheap: unified-planning is only imported by the first
Fast Downward plan.
"""

from meta_robot.planning.pddl import Goal, domain_pddl, parse_goal, problem_pddl
from meta_robot.planning.planner import (
    BACKENDS,
    Planner,
    PlannerTimeout,
    PlannerUnavailable,
    PlanResult,
    Unsatisfiable,
    available_backends,
)
from meta_robot.planning.symbolic import (
    Atom,
    PlanningError,
    all_atoms,
    atom_text,
    holds,
    parse_atom,
    progress,
    unmet,
)
from meta_robot.planning.tasks import Task, load_tasks, resolve_task

__all__ = [
    "BACKENDS",
    "Atom",
    "Goal",
    "PlanResult",
    "Planner",
    "PlannerTimeout",
    "PlannerUnavailable",
    "PlanningError",
    "Task",
    "Unsatisfiable",
    "all_atoms",
    "atom_text",
    "available_backends",
    "domain_pddl",
    "holds",
    "load_tasks",
    "parse_atom",
    "parse_goal",
    "problem_pddl",
    "progress",
    "resolve_task",
    "unmet",
]
