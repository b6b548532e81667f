"""Named long-horizon tasks (``config/tasks.yaml``): a PDDL goal, a start scenario and a skill budget.

Goals are validated against the skill registry and scenarios against ``sim/scenarios/`` when the file
is loaded, so a typo fails at start-up with the file and task named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from meta_robot.core import paths
from meta_robot.planning.pddl import Goal, parse_goal
from meta_robot.planning.symbolic import PlanningError
from meta_robot.skills.registry import Registry

FORMAT = "meta_robot.tasks/1"
CUSTOM = "custom"  # the task name resolve_task gives a raw PDDL goal


@dataclass(frozen=True)
class Task:
    name: str
    doc: str
    goal: Goal
    scenario: str
    max_skills: int  # skill executions the executive may spend, retries included


def load_tasks(registry: Registry, path: str | Path | None = None) -> dict[str, Task]:
    """Read and validate the tasks file (``config/tasks.yaml`` by default)."""
    from meta_robot.sim.scenario import available_scenarios

    path = Path(path) if path is not None else paths.config_path("tasks.yaml")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PlanningError(f"cannot read the tasks file {path}: {exc}") from exc
    if not isinstance(raw, Mapping) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, Mapping) else raw
        raise PlanningError(f"{path}: format must be '{FORMAT}', got {found!r}")
    entries = raw.get("tasks")
    if not isinstance(entries, Mapping) or not entries:
        raise PlanningError(f"{path}: 'tasks' must map task names to {{doc, goal, scenario, max_skills}}")
    scenarios = available_scenarios()
    tasks = {}
    for name, entry in entries.items():
        where = f"{path}: task '{name}'"
        if not isinstance(entry, Mapping):
            raise PlanningError(f"{where} must be a mapping with doc, goal, scenario and max_skills")
        missing = [key for key in ("doc", "goal", "scenario", "max_skills") if key not in entry]
        if missing:
            raise PlanningError(f"{where} lacks {', '.join(missing)}")
        unknown = sorted(set(entry) - {"doc", "goal", "scenario", "max_skills"})
        if unknown:
            raise PlanningError(f"{where} has unknown keys {unknown}")
        try:
            goal = parse_goal(registry, str(entry["goal"]))
        except PlanningError as exc:
            raise PlanningError(f"{where}: {exc}") from exc
        if entry["scenario"] not in scenarios:
            raise PlanningError(
                f"{where}: unknown scenario '{entry['scenario']}'; available: {', '.join(scenarios)}"
            )
        budget = entry["max_skills"]
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise PlanningError(f"{where}: max_skills must be a positive integer, got {budget!r}")
        tasks[str(name)] = Task(
            str(name), " ".join(str(entry["doc"]).split()), goal, entry["scenario"], budget
        )
    return tasks


def resolve_task(tasks: Mapping[str, Task], name_or_goal: str, registry: Registry) -> tuple[str, Goal]:
    """A task name -> (name, its goal); a raw PDDL goal ``(...)`` -> (``"custom"``, the parsed goal)."""
    text = name_or_goal.strip()
    if text.startswith("("):
        return CUSTOM, parse_goal(registry, text)
    if text in tasks:
        return text, tasks[text].goal
    raise PlanningError(
        f"unknown task '{text}'; known tasks: {', '.join(tasks) or 'none'} "
        "(or give a PDDL goal such as (in_drawer red_cube))"
    )
