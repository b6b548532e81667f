"""How to set up one episode of a skill: the scenario that provides some of its preconditions, and
the skills (run by the scripted operator, not recorded) that bring about the rest. Shared by the ROS
recorder, the graph evaluation and the data engine, so all of them start a skill from the same world.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from meta_robot.skills.registry import GroundSkill, Literal, Registry, RegistryError

SCENARIO_FOR = {"drawer_open": "drawer_open"}  # precondition predicate -> a scenario that starts with it
DEFAULT_SCENARIO = "default"


@dataclass
class EpisodePlan:
    """How to record one demonstration of ``skill``: the scenario and the unrecorded set-up skills."""

    skill: GroundSkill
    scenario: str
    setup: list[GroundSkill]


def plan_episode(registry: Registry, skill: GroundSkill) -> EpisodePlan:
    """Pick a scenario for the preconditions a scenario can provide; achieve the rest with skills."""
    scenario = DEFAULT_SCENARIO
    setup: list[GroundSkill] = []
    for lit in skill.preconditions:
        if lit.negated:
            continue
        if lit.predicate in SCENARIO_FOR:
            scenario = SCENARIO_FOR[lit.predicate]
        elif lit.predicate == "holding":
            setup.append(_achiever(registry, lit))
    return EpisodePlan(skill, scenario, setup)


def _achiever(registry: Registry, literal: Literal) -> GroundSkill:
    """The registry skill whose effects include ``literal`` (e.g. pick(x) for (holding x))."""
    for name in registry.skills:
        for ground in registry.groundings(name):
            if literal in ground.effects:
                return ground
    raise RegistryError(f"no skill in the registry achieves {literal}")


def argument_cycle(registry: Registry, skill: str, arguments: list[str] | None) -> Iterator[GroundSkill]:
    """The fixed grounding if ``arguments`` are given, else every grounding in turn."""
    if arguments:
        return itertools.repeat(registry.ground(skill, arguments))
    return itertools.cycle(registry.groundings(skill))
