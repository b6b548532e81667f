"""The symbolic planning core: atoms and progression, PDDL generation, both planner backends, tasks."""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from meta_robot.planning import (
    Goal,
    Planner,
    PlannerTimeout,
    PlannerUnavailable,
    PlanningError,
    Unsatisfiable,
    all_atoms,
    atom_text,
    domain_pddl,
    holds,
    load_tasks,
    parse_atom,
    parse_goal,
    problem_pddl,
    progress,
    resolve_task,
    unmet,
)
from meta_robot.planning import planner as planner_module
from meta_robot.skills.registry import Literal, load_registry

HAS_FAST_DOWNWARD = "fast-downward" in planner_module.available_backends()
needs_fd = pytest.mark.skipif(
    not HAS_FAST_DOWNWARD,
    reason="Fast Downward not installed (pip install unified-planning up-fast-downward)",
)
BACKENDS = ["pyperplan", pytest.param("fast-downward", marks=needs_fd)]
# Optimal plan lengths from each task's scenario start state.
EXPECTED_LENGTH = {"fill_drawer": 8, "stock_shelf": 6, "sort_by_colour": 8, "tidy_desk": 6, "close_up": 5}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def tasks(registry):
    return load_tasks(registry)


@pytest.fixture(scope="module")
def planners(registry):
    """One planner per backend for the whole module (unified-planning's import is slow)."""
    return {"pyperplan": Planner(registry, "pyperplan"), "fast-downward": _fd_planner(registry)}


def _fd_planner(registry):
    return Planner(registry, "fast-downward") if HAS_FAST_DOWNWARD else None


def start_state(registry, scenario: str = "default") -> frozenset:
    """What the classifiers report at a scenario's start: objects on the desk, hand empty."""
    drawer = ("drawer_open",) if scenario == "drawer_open" else ("drawer_closed",)
    return frozenset({("hand_empty",), drawer} | {("on_desk", o) for o in registry.types["object"]})


def replay(state, steps):
    for step in steps:
        assert holds(state, step.preconditions), f"{step} is not applicable"
        state = progress(state, step)
    return state


# -- atoms, literals, progression ------------------------------------------------------------------------


def test_atom_text_round_trips():
    assert atom_text(("holding", "red_cube")) == "(holding red_cube)"
    assert atom_text(("drawer_open",)) == "(drawer_open)"
    assert parse_atom(" ( holding  red_cube ) ") == ("holding", "red_cube")
    assert parse_atom("(drawer_open)") == ("drawer_open",)
    for bad in ["holding red_cube", "(not (drawer_open))", "()", "(holding ?o)"]:
        with pytest.raises(PlanningError):
            parse_atom(bad)


def test_holds_unmet_and_progress(registry):
    state = start_state(registry)
    pick = registry.ground("pick", ["red_cube"])
    assert holds(state, pick.preconditions) and unmet(state, pick.preconditions) == []
    after = progress(state, pick)
    assert ("holding", "red_cube") in after
    assert ("hand_empty",) not in after and ("on_desk", "red_cube") not in after
    assert ("on_desk", "blue_bar") in after
    assert unmet(after, pick.preconditions) == [Literal("hand_empty"), Literal("on_desk", ("red_cube",))]
    assert holds(after, [Literal("hand_empty", negated=True)])
    assert not holds(after, [Literal("holding", ("red_cube",), negated=True)])


def test_all_atoms_covers_the_typed_groundings(registry):
    atoms = all_atoms(registry)
    assert atoms == all_atoms(registry) and len(set(atoms)) == len(atoms)
    assert atoms[0] == ("hand_empty",)
    assert ("in_region", "red_cube", "near_left") in atoms
    assert ("in_region", "near_left", "red_cube") not in atoms
    assert ("holding", "near_left") not in atoms
    # hand_empty, drawer_open, drawer_closed; holding, on_desk, in_drawer, on_shelf x 3; in_region x 3 x 2
    assert len(atoms) == 21


# -- goals and PDDL --------------------------------------------------------------------------------------


def test_parse_goal_normalises(registry):
    goal = parse_goal(registry, "(and (in_drawer red_cube)\n (and (drawer_closed)) (in_drawer red_cube))")
    assert goal.literals == (Literal("in_drawer", ("red_cube",)), Literal("drawer_closed"))
    assert str(goal) == goal.text == "(and (in_drawer red_cube) (drawer_closed))"
    assert parse_goal(registry, " (holding blue_bar) ").text == "(holding blue_bar)"
    negated = parse_goal(registry, "(and (not (drawer_open)) (on_shelf red_cube))")
    assert negated.has_negations and negated.literals[0] == Literal("drawer_open", negated=True)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("(in_drawer purple_ball)", "unknown object 'purple_ball'"),
        ("(and (drawer_closed) (in_box red_cube))", "unknown predicate 'in_box'"),
        ("(in_drawer red_cube blue_bar)", "'in_drawer' takes 1"),
        ("(drawer_open red_cube)", "'drawer_open' takes 0"),
        ("(in_region near_left red_cube)", "'near_left' is a region"),
        ("(holding ?o)", "variable ?o"),
        ("(and (drawer_open)", "unclosed"),
        ("(drawer_open))", "unmatched"),
        ("(or (drawer_open) (drawer_closed))", "'or' is not supported"),
        ("(and)", "empty"),
        ("", "empty"),
        ("drawer_open", "parenthesised"),
    ],
)
def test_parse_goal_names_the_mistake(registry, text, named):
    with pytest.raises(PlanningError, match=named.replace("?", r"\?").replace("(", r"\(")):
        parse_goal(registry, text)


def test_unknown_names_list_the_known_ones(registry):
    with pytest.raises(PlanningError, match="known objects: red_cube, green_cylinder, blue_bar"):
        parse_goal(registry, "(on_shelf purple_ball)")
    with pytest.raises(PlanningError, match="known predicates: hand_empty, holding"):
        parse_goal(registry, "(on_floor red_cube)")


def test_domain_comes_from_the_registry(registry):
    text = domain_pddl(registry)
    assert ":negative-preconditions" not in text
    assert ":negative-preconditions" in domain_pddl(registry, negative_preconditions=True)
    for skill in registry.skills:
        assert f"(:action {skill}" in text
    # the registry's type 'object' must not be PDDL's root type (regions would be objects too)
    assert "(:types object_type region)" in text
    assert ":parameters (?o - object_type ?r - region)" in text


def test_generated_pddl_parses_with_pyperplan(registry, tmp_path):
    from pyperplan.pddl.parser import Parser

    goal = parse_goal(registry, "(and (in_drawer red_cube) (drawer_closed))")
    (tmp_path / "d.pddl").write_text(domain_pddl(registry))
    (tmp_path / "p.pddl").write_text(problem_pddl(registry, start_state(registry), goal))
    parser = Parser(str(tmp_path / "d.pddl"), str(tmp_path / "p.pddl"))
    domain = parser.parse_domain()
    problem = parser.parse_problem(domain)
    assert set(domain.actions) == set(registry.skills)
    assert set(problem.objects) == {o for objects in registry.types.values() for o in objects}


@needs_fd
def test_generated_pddl_parses_with_unified_planning(registry):
    from unified_planning.io import PDDLReader

    goal = parse_goal(registry, "(and (in_drawer red_cube) (not (drawer_open)))")
    problem = PDDLReader().parse_problem_string(
        domain_pddl(registry, negative_preconditions=True),
        problem_pddl(registry, start_state(registry), goal),
    )
    assert {a.name for a in problem.actions} == set(registry.skills)
    assert len(problem.all_objects) == 5


def test_problem_rejects_a_bad_state_atom(registry, planners):
    goal = parse_goal(registry, "(drawer_open)")
    with pytest.raises(PlanningError, match="state: unknown object 'red_cub'"):
        problem_pddl(registry, {("on_desk", "red_cub")}, goal)
    with pytest.raises(PlanningError, match="unknown predicate 'on_table'"):
        planners["pyperplan"].plan({("on_table", "red_cube")}, goal)


# -- planning --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_task_plans_from_its_scenario(registry, tasks, planners, backend):
    assert {"fill_drawer", "stock_shelf", "sort_by_colour"} <= set(tasks)
    for name, task in tasks.items():
        state = start_state(registry, task.scenario)
        result = planners[backend].plan(state, task.goal)
        assert result.backend == backend
        assert holds(replay(state, result.steps), task.goal.literals), name
        assert len(result.steps) == EXPECTED_LENGTH.get(name, len(result.steps)), (name, str(result))
        assert len(result.steps) <= min(12, task.max_skills), name
        assert result.generate_seconds >= 0 and result.search_seconds > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_replanning_mid_task_is_shorter(registry, tasks, planners, backend):
    goal = tasks["fill_drawer"].goal
    # red cube already in the open drawer, green cylinder in the hand
    state = frozenset(
        {("drawer_open",), ("in_drawer", "red_cube"), ("holding", "green_cylinder"), ("on_desk", "blue_bar")}
    )
    result = planners[backend].plan(state, goal)
    assert [str(s) for s in result.steps] == [
        "place_in_drawer(green_cylinder)",
        "pick(blue_bar)",
        "place_in_drawer(blue_bar)",
        "close_drawer()",
    ]
    assert holds(replay(state, result.steps), goal.literals)


def test_satisfied_goal_needs_no_planner(registry, planners, monkeypatch):
    def no_search(*args):
        raise AssertionError("the backend must not be called")

    planner = planners["pyperplan"]
    monkeypatch.setattr(planner, "_pyperplan", no_search)
    result = planner.plan(start_state(registry), "(and (drawer_closed) (on_desk red_cube))")
    assert result.steps == () and result.search_seconds == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_unreachable_goal_is_unsatisfiable(registry, planners, backend):
    # nothing takes an object out of the drawer, so it cannot also reach the shelf
    with pytest.raises(Unsatisfiable, match=r"in_drawer red_cube\) \(on_shelf red_cube\)") as caught:
        planners[backend].plan(start_state(registry), "(and (in_drawer red_cube) (on_shelf red_cube))")
    assert "(on_desk red_cube)" in str(caught.value) and "blue_bar" not in str(caught.value)
    state = start_state(registry) - {("on_desk", "blue_bar")} | {("in_drawer", "blue_bar")}
    with pytest.raises(Unsatisfiable, match=r"relevant true atoms: .*\(in_drawer blue_bar\)"):
        planners[backend].plan(state, "(on_shelf blue_bar)")


def test_contradictory_goal_is_unsatisfiable(planners, registry):
    with pytest.raises(Unsatisfiable, match="both true and false"):
        planners["pyperplan"].plan(start_state(registry), "(and (drawer_open) (not (drawer_open)))")


def test_pyperplan_rejects_negated_goals(registry, planners):
    with pytest.raises(PlanningError, match=r"pyperplan cannot .*\(not \(drawer_closed\)\).*fast-downward"):
        planners["pyperplan"].plan(start_state(registry), "(and (on_shelf red_cube) (not (drawer_closed)))")


@needs_fd
def test_fast_downward_accepts_negated_goals(registry, planners):
    goal = parse_goal(registry, "(and (on_shelf red_cube) (not (drawer_closed)))")
    result = planners["fast-downward"].plan(start_state(registry), goal)
    assert len(result.steps) == 3
    assert holds(replay(start_state(registry), result.steps), goal.literals)


def test_negated_preconditions_in_the_registry(registry, planners):
    """A skill with a negated precondition adds the PDDL requirement; pyperplan refuses it clearly."""
    spec = registry.skills["open_drawer"]
    opened = dataclasses.replace(
        spec, preconditions=(Literal("hand_empty"), Literal("drawer_open", negated=True))
    )
    variant = dataclasses.replace(registry, skills={**registry.skills, "open_drawer": opened})
    assert ":negative-preconditions" in domain_pddl(variant)
    with pytest.raises(PlanningError, match=r"\(not \(drawer_open\)\) \(in open_drawer\)"):
        Planner(variant, "pyperplan").plan(start_state(registry), "(in_drawer red_cube)")
    if HAS_FAST_DOWNWARD:
        result = Planner(variant, "fast-downward").plan(start_state(registry), "(in_drawer red_cube)")
        assert [str(s) for s in result.steps] == [
            "open_drawer()",
            "pick(red_cube)",
            "place_in_drawer(red_cube)",
        ]


def test_a_wrong_backend_plan_is_caught(registry, planners, monkeypatch):
    planner = planners["pyperplan"]
    monkeypatch.setattr(planner, "_pyperplan", lambda state, goal: (["(pick red_cube)"], 0.0, 0.0))
    with pytest.raises(PlanningError, match=r"still do not hold"):
        planner.plan(start_state(registry), "(on_shelf red_cube)")
    monkeypatch.setattr(planner, "_pyperplan", lambda state, goal: (["(place_on_shelf red_cube)"], 0.0, 0.0))
    with pytest.raises(PlanningError, match=r"step 1 place_on_shelf\(red_cube\) needs \(holding red_cube\)"):
        planner.plan(start_state(registry), "(on_shelf red_cube)")
    monkeypatch.setattr(planner, "_pyperplan", lambda state, goal: (["(fly red_cube)"], 0.0, 0.0))
    with pytest.raises(PlanningError, match="unknown skill 'fly'"):
        planner.plan(start_state(registry), "(on_shelf red_cube)")


def test_backend_choice(registry, monkeypatch):
    with pytest.raises(PlanningError, match="unknown planner backend 'lama'"):
        Planner(registry, "lama")
    with pytest.raises(PlanningError, match="time_limit"):
        Planner(registry, "pyperplan", time_limit=0)
    monkeypatch.setattr(planner_module, "available_backends", lambda: ["pyperplan"])
    assert Planner(registry).backend == "pyperplan"
    with pytest.raises(PlannerUnavailable, match="pip install unified-planning up-fast-downward"):
        Planner(registry, "fast-downward")
    monkeypatch.setattr(planner_module, "available_backends", lambda: [])
    with pytest.raises(PlannerUnavailable, match="pip install"):
        Planner(registry)


@needs_fd
def test_auto_prefers_fast_downward(registry):
    assert Planner(registry).backend == "fast-downward"


# -- time limit ------------------------------------------------------------------------------------------


def hanoi(tmp_path: Path, discs: int):
    """Towers of Hanoi as a skill registry: 2^discs - 1 moves, far beyond a one-second search."""
    names = [f"d{i}" for i in range(1, discs + 1)]  # d1 is the smallest
    raw = {
        "format": "meta_robot.skills/1",
        "domain": "hanoi",
        "types": {"place": [*names, "p1", "p2", "p3"]},
        "predicates": {
            "on": {"parameters": ["place", "place"]},
            "clear": {"parameters": ["place"]},
            "smaller": {"parameters": ["place", "place"]},
        },
        "skills": {
            "move": {
                "parameters": ["?d - place", "?f - place", "?t - place"],
                "preconditions": ["(smaller ?t ?d)", "(on ?d ?f)", "(clear ?d)", "(clear ?t)"],
                "effects": ["(on ?d ?t)", "(clear ?f)", "(not (on ?d ?f))", "(not (clear ?t))"],
                "timeout": 1,
            }
        },
    }
    path = tmp_path / "hanoi.yaml"
    path.write_text(yaml.safe_dump(raw))
    registry = load_registry(path)
    state = {("smaller", big, d) for i, d in enumerate(names) for big in [*names[i + 1 :], "p1", "p2", "p3"]}
    tower = ["p1", *reversed(names)]
    state |= {("on", above, below) for below, above in itertools.pairwise(tower)}
    state |= {("clear", "d1"), ("clear", "p2"), ("clear", "p3")}
    target = ["p3", *reversed(names)]
    goal = Goal.of(Literal("on", (above, below)) for below, above in itertools.pairwise(target))
    return registry, frozenset(state), goal


def live_processes_mentioning(marker: str) -> set[int]:
    """Pids of running (not zombie) processes whose command line contains ``marker``."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if state != "Z" and marker.encode() in cmdline:
            found.add(int(pid))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to check that the search stopped")
@pytest.mark.parametrize("backend", BACKENDS)
def test_time_limit_stops_the_search(tmp_path, monkeypatch, backend):
    """Hanoi-11 takes Fast Downward well over 10 s; at the 2 s limit its search (or pyperplan's
    worker) must be killed, not left running, and leave no files behind."""
    registry, state, goal = hanoi(tmp_path, 11)
    # both backends write their PDDL into a temporary directory named on the planner's command line:
    # put it under tmp_path to tell this test's processes from any other planner on the machine
    workdir = tmp_path / "planner_tmp"
    workdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(workdir))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    planner = Planner(registry, backend, time_limit=2.0)
    with pytest.raises(PlannerTimeout, match="within 2 s"):
        planner.plan(state, goal)
    deadline = time.monotonic() + 10
    while (left := live_processes_mentioning(str(workdir))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"planner processes still running after the time limit: {left}"
    assert list(cwd.iterdir()) == []  # e.g. no output.sas from Fast Downward's translator
    assert list(workdir.iterdir()) == []


def test_small_custom_registry_plans(tmp_path):
    """Nothing in the PDDL is specific to the workcell: a 3-disc Hanoi solves optimally."""
    registry, state, goal = hanoi(tmp_path, 3)
    result = Planner(registry, "pyperplan").plan(state, goal)
    assert len(result.steps) == 7 and holds(replay(state, result.steps), goal.literals)


# -- tasks -----------------------------------------------------------------------------------------------


def test_tasks_file(tasks):
    for name, task in tasks.items():
        assert task.name == name and task.doc and task.scenario in ("default", "drawer_open")
        assert task.max_skills >= 1
    assert tasks["fill_drawer"].goal.text == (
        "(and (in_drawer red_cube) (in_drawer green_cylinder) (in_drawer blue_bar) (drawer_closed))"
    )


def test_resolve_task(registry, tasks):
    assert resolve_task(tasks, "stock_shelf", registry) == ("stock_shelf", tasks["stock_shelf"].goal)
    name, goal = resolve_task(tasks, " (on_shelf red_cube)", registry)
    assert name == "custom" and goal.text == "(on_shelf red_cube)"
    with pytest.raises(PlanningError, match="unknown task 'fil_drawer'; known tasks: fill_drawer"):
        resolve_task(tasks, "fil_drawer", registry)
    with pytest.raises(PlanningError, match="unknown object"):
        resolve_task(tasks, "(on_shelf red_ball)", registry)


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"goal": "(in_drawer red_ball)"}, "task 'broken'.*unknown object 'red_ball'"),
        ({"scenario": "kitchen"}, "task 'broken': unknown scenario 'kitchen'; available: default"),
        ({"max_skills": 0}, "max_skills must be a positive integer"),
        ({"budget": 3}, "unknown keys"),
    ],
)
def test_bad_tasks_file_names_file_and_task(registry, tmp_path, entry, named):
    task = {"doc": "d", "goal": "(drawer_open)", "scenario": "default", "max_skills": 3, **entry}
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump({"format": "meta_robot.tasks/1", "tasks": {"broken": task}}))
    with pytest.raises(PlanningError, match=f"{path}.*{named}"):
        load_tasks(registry, path)
    path.write_text(yaml.safe_dump({"format": "meta_robot.tasks/0", "tasks": {"broken": task}}))
    with pytest.raises(PlanningError, match=r"format must be 'meta_robot\.tasks/1'"):
        load_tasks(registry, path)
