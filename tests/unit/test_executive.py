"""The executive's loop against a symbolic world: retries, replanning, budgets, stops (no ROS).

The world applies a skill's effects unless the test scripts a failure, and the "classifier" reports
exactly the world's state, so every outcome is decided by the executive's own logic and the real
planner (pyperplan: no native parts, fast to start).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meta_robot.planning.executive import FAILED, SUCCEEDED, Budgets, Event, Executive, SkillOutcome, reaches
from meta_robot.planning.pddl import parse_goal
from meta_robot.planning.planner import Planner
from meta_robot.planning.state_estimation import StateEstimate
from meta_robot.planning.symbolic import Atom, all_atoms, holds, progress
from meta_robot.skills.registry import GroundSkill, load_registry

FILL_DRAWER = "(and (in_drawer red_cube) (in_drawer green_cylinder) (in_drawer blue_bar) (drawer_closed))"


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def planner(registry):
    return Planner(registry, "pyperplan", time_limit=30.0)


def tidy(registry) -> frozenset[Atom]:
    return frozenset(a for a in all_atoms(registry) if a[0] in ("hand_empty", "drawer_closed", "on_desk"))


class SymbolicWorld:
    """Applies each skill's effects, except where ``fail`` says an attempt fails (effects not seen)
    or ``report`` overrides what the skill server claims; ``after[name]`` perturbs the world once,
    after the first execution of a skill called ``name``."""

    def __init__(self, state: frozenset[Atom]) -> None:
        self.state = state
        self.executed: list[str] = []
        self.fail: dict[str, int] = {}  # skill -> attempts that fail before one succeeds
        self.report: dict[str, str] = {}  # skill -> outcome the server reports regardless
        self.after: dict[str, Callable[[frozenset[Atom], GroundSkill], frozenset[Atom]]] = {}

    def run(self, skill: GroundSkill) -> SkillOutcome:
        name = str(skill)
        self.executed.append(name)
        assert holds(self.state, skill.preconditions), f"{name} dispatched with unmet preconditions"
        if self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            outcome = FAILED
        else:
            self.state = progress(self.state, skill)
            outcome = SUCCEEDED
        if perturb := self.after.pop(skill.name, None):
            self.state = perturb(self.state, skill)
        return SkillOutcome(self.report.get(name, outcome), 0.5)

    def observe(self) -> StateEstimate:
        return StateEstimate(self.state, dict.fromkeys(self.state, 1.0), frozenset(), 5)


def run(registry, planner, world, goal=FILL_DRAWER, budgets=None, stop=lambda: None, events=None):
    executive = Executive(
        plan=planner.plan,
        run_skill=world.run,
        observe=world.observe,
        should_stop=stop,
        on_event=(events.append if events is not None else lambda e: None),
    )
    return executive.run(parse_goal(registry, goal), budgets or Budgets())


def test_a_long_horizon_task_runs_its_plan_once(registry, planner):
    world = SymbolicWorld(tidy(registry))
    events: list[Event] = []
    report = run(registry, planner, world, events=events)
    assert report.success, report.message
    assert report.skills_executed == 8 and report.retries == 0 and report.replans == 0
    assert world.executed == report.plans[0] and world.executed[0] == "open_drawer()"
    assert world.executed[-1] == "close_drawer()"
    dispatches = [e for e in events if e.kind == "dispatch"]
    assert [e.step_index for e in dispatches] == list(range(8))
    assert events[-1].kind == "done" and events[-1].report is report


def test_a_step_whose_effects_are_not_observed_is_retried(registry, planner):
    world = SymbolicWorld(tidy(registry))
    world.fail["pick(green_cylinder)"] = 2
    report = run(registry, planner, world)
    assert report.success, report.message
    assert report.retries == 2 and report.skills_executed == 10
    assert world.executed.count("pick(green_cylinder)") == 3
    attempts = [s.attempt for s in report.steps if s.skill == "pick(green_cylinder)"]
    assert attempts == [1, 2, 3] and [s.verified for s in report.steps].count(False) == 2


def test_the_classifier_not_the_skill_server_decides_success(registry, planner):
    """A server that claims success without the effects is retried; one that reports a failure
    whose effects are nonetheless observed moves on."""
    world = SymbolicWorld(tidy(registry))
    world.fail["open_drawer()"] = 1
    world.report["open_drawer()"] = SUCCEEDED
    world.report["pick(red_cube)"] = FAILED
    report = run(registry, planner, world)
    assert report.success
    assert world.executed.count("open_drawer()") == 2 and world.executed.count("pick(red_cube)") == 1
    assert report.retries == 1


def test_an_object_moved_by_someone_else_makes_the_executive_replan(registry, planner):
    world = SymbolicWorld(tidy(registry))
    stored: list[str] = []

    def take_out(state, skill):  # right after the first object went into the drawer
        stored.append(skill.arguments[0])
        return (state - {("in_drawer", stored[0])}) | {("on_desk", stored[0])}

    world.after["place_in_drawer"] = take_out
    report = run(registry, planner, world)
    assert report.success, report.message
    assert report.replans == 1 and len(report.plans) == 2
    assert world.executed.count(f"pick({stored[0]})") == 2
    assert world.executed.count(f"place_in_drawer({stored[0]})") == 2
    assert report.retries == 0


def test_a_helpful_world_shortens_the_plan(registry, planner):
    """Someone already put the bar away: the remaining plan no longer applies, the new one is shorter."""
    world = SymbolicWorld(tidy(registry))
    world.after["open_drawer"] = lambda s, _: (s - {("on_desk", "blue_bar")}) | {("in_drawer", "blue_bar")}
    report = run(registry, planner, world)
    assert report.success and report.replans == 1
    assert report.skills_executed == 6 and "pick(blue_bar)" not in world.executed


def test_a_step_that_keeps_failing_ends_the_task_with_its_name(registry, planner):
    world = SymbolicWorld(tidy(registry))
    world.fail["open_drawer()"] = 99
    report = run(registry, planner, world)
    retries = registry.skill("open_drawer").retries
    assert not report.success and "open_drawer()" in report.message and "retry budget" in report.message
    assert world.executed == ["open_drawer()"] * (retries + 1)


def test_the_execution_budget_bounds_the_task(registry, planner):
    world = SymbolicWorld(tidy(registry))
    report = run(registry, planner, world, budgets=Budgets(max_skills=3))
    assert not report.success and "budget of 3 skill executions" in report.message
    assert len(world.executed) == 3


def test_an_unsatisfiable_goal_executes_nothing(registry, planner):
    world = SymbolicWorld(tidy(registry))
    report = run(registry, planner, world, goal="(and (in_drawer red_cube) (on_shelf red_cube))")
    assert not report.success and "unsatisfiable" in report.message and world.executed == []


def test_a_goal_that_already_holds_needs_no_skill(registry, planner):
    world = SymbolicWorld(tidy(registry))
    report = run(registry, planner, world, goal="(drawer_closed)")
    assert report.success and world.executed == [] and report.plans == []


def test_a_stop_request_ends_the_task_before_the_next_skill(registry, planner):
    world = SymbolicWorld(tidy(registry))
    stop = lambda: "e-stop is latched" if len(world.executed) >= 2 else None  # noqa: E731
    report = run(registry, planner, world, stop=stop)
    assert not report.success and "e-stop" in report.message and len(world.executed) == 2


def test_reaches_checks_preconditions_and_the_goal(registry):
    goal = parse_goal(registry, "(holding red_cube)")
    pick = registry.ground("pick", ["red_cube"])
    assert reaches(tidy(registry), [pick], goal)
    assert not reaches(tidy(registry) - {("on_desk", "red_cube")}, [pick], goal)
    assert not reaches(tidy(registry), [registry.ground("pick", ["blue_bar"])], goal)


def test_a_planner_timeout_ends_the_task_with_its_message(registry):
    from meta_robot.planning.planner import PlannerTimeout

    def slow_planner(state, goal):
        raise PlannerTimeout(f"no plan for {goal} within 0.01 s")

    world = SymbolicWorld(tidy(registry))
    executive = Executive(plan=slow_planner, run_skill=world.run, observe=world.observe)
    report = executive.run(parse_goal(registry, FILL_DRAWER))
    assert not report.success and "within 0.01 s" in report.message and world.executed == []


def test_an_object_seen_nowhere_is_looked_at_again_before_giving_up(registry, planner):
    """Right after a failed pick the object may be falling or hidden: no place atom holds for it and
    the goal looks unreachable; the next look finds it on the desk and the task goes on."""
    world = SymbolicWorld(tidy(registry))
    world.fail["pick(red_cube)"] = 1
    looks = {"n": 0}
    observe = world.observe

    def blurry_observe() -> StateEstimate:
        estimate = observe()
        if "pick(red_cube)" in world.executed and looks["n"] == 0:
            looks["n"] += 1
            return StateEstimate(estimate.atoms - {("on_desk", "red_cube")}, {}, frozenset(), 5)
        return estimate

    executive = Executive(plan=planner.plan, run_skill=world.run, observe=blurry_observe)
    report = executive.run(parse_goal(registry, FILL_DRAWER))
    assert report.success, report.message
    assert world.executed.count("pick(red_cube)") == 2


# --- set-up from the node's parameters (meta_robot.planning.executive_setup) ---------------------
def test_typed_atoms_ground_to_every_object_of_the_type(registry):
    from meta_robot.planning.executive_setup import ground_atoms

    atoms = ground_atoms(registry, ["(hand_empty)", "(holding ?object)"])
    assert atoms[0] == ("hand_empty",)
    assert sorted(atoms[1:]) == sorted(("holding", o) for o in registry.types["object"])


def test_the_default_estimator_knows_every_object_and_an_unknown_place_is_refused(registry):
    from dataclasses import replace

    from meta_robot.planning.executive_setup import ExecutiveParameters, state_estimator

    estimator = state_estimator(registry, ExecutiveParameters())
    assert estimator.window == ExecutiveParameters().state_window
    with pytest.raises(ValueError, match="in_the_fridge"):
        state_estimator(
            registry, replace(ExecutiveParameters(), place_predicates=("on_desk", "in_the_fridge"))
        )


def test_the_planner_warms_up_on_a_task_that_plans_from_a_tidy_desk(registry, planner):
    from meta_robot.planning.executive_setup import warm_up
    from meta_robot.planning.tasks import load_tasks

    tasks = load_tasks(registry)
    assert warm_up(planner, tasks.values()) in tasks
