"""The skill registry, the predicates grounded on privileged state, and the scripted operator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell
from meta_robot.skills.episode_plan import plan_episode
from meta_robot.skills.registry import Literal, RegistryError, load_registry
from meta_robot.skills.rollout import run_skill, world_state
from meta_robot.skills.scripted_operator import ScriptedOperator
from meta_robot.skills.world import Grounding, WorldState


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def grounding(registry):
    return Grounding(registry)


def world(**overrides) -> WorldState:
    values = dict(
        objects={
            "red_cube": np.array([0.45, 0.0, 0.02]),
            "green_cylinder": np.array([0.40, 0.10, 0.03]),
            "blue_bar": np.array([0.40, -0.10, 0.015]),
        },
        drawer_opening=0.0,
        tcp_position=np.array([0.45, 0.0, 0.30]),
        gripper_width=0.08,
        gripper_grasped=False,
    )
    values.update(overrides)
    return WorldState(**values)


def test_registry_declares_every_primitive_with_checked_conditions(registry):
    assert {"open_drawer", "close_drawer", "pick", "place_in_drawer", "place_on_shelf", "push"} <= set(
        registry.skills
    )
    pick = registry.ground("pick", ["red_cube"])
    assert str(pick) == "pick(red_cube)"
    assert Literal("holding", ("red_cube",)) in pick.effects
    assert Literal("hand_empty", (), negated=True) in pick.effects
    assert len(registry.groundings("push")) == 3 * 2


@pytest.mark.parametrize(
    ("skill", "arguments", "message"),
    [
        ("fly", [], "unknown skill 'fly'"),
        ("pick", [], r"takes \(\?o - object\)"),
        ("pick", ["drawer"], "unknown object 'drawer'"),
        ("push", ["red_cube", "blue_bar"], r"\?r must be a region"),
    ],
)
def test_bad_skill_requests_are_clear_errors(registry, skill, arguments, message):
    with pytest.raises(RegistryError, match=message):
        registry.ground(skill, arguments)


def test_malformed_registry_files_fail_with_the_file_and_skill_named(tmp_path):
    good = load_registry().source
    text = Path(good).read_text()
    for broken, message in [
        (
            text.replace('"(holding ?o)", "(drawer_open)"', '"(holding ?x)", "(drawer_open)"'),
            "undeclared parameter",
        ),
        (
            text.replace('"(hand_empty)", "(drawer_closed)"', '"(hand_empty)", "(drawer_shut)"'),
            "unknown predicate",
        ),
        (
            text.replace('["(drawer_open)", "(not (drawer_closed))"]', '["(drawer_open", "x"]'),
            "not a PDDL literal",
        ),
        (text.replace("format: meta_robot.skills/1", "format: 2"), "format must be"),
    ]:
        path = tmp_path / "skills.yaml"
        path.write_text(broken)
        with pytest.raises(RegistryError, match=message):
            load_registry(path)


def test_predicates_follow_the_geometry(grounding):
    w = world()
    assert grounding.holds(w, Literal("on_desk", ("red_cube",)))
    assert grounding.holds(w, Literal("hand_empty"))
    assert grounding.holds(w, Literal("drawer_closed")) and not grounding.holds(w, Literal("drawer_open"))
    # an object inside the drawer's interior, which moves out with the drawer
    inside_open = np.array([0.63 - 0.14, 0.30, 0.03])
    w_open = world(objects={**w.objects, "red_cube": inside_open}, drawer_opening=0.14)
    assert grounding.holds(w_open, Literal("in_drawer", ("red_cube",)))
    assert grounding.holds(w_open, Literal("drawer_open"))
    assert not grounding.holds(w_open, Literal("on_desk", ("red_cube",)))
    w_closed = world(objects={**w.objects, "red_cube": inside_open}, drawer_opening=0.0)
    assert not grounding.holds(w_closed, Literal("in_drawer", ("red_cube",)))
    # held: grasped and between the fingers; not on the desk any more
    held = world(tcp_position=np.array([0.45, 0.0, 0.03]), gripper_grasped=True, gripper_width=0.04)
    assert grounding.holds(held, Literal("holding", ("red_cube",)))
    assert not grounding.holds(held, Literal("hand_empty"))
    assert not grounding.holds(held, Literal("on_desk", ("red_cube",)))
    shelf = world(objects={**w.objects, "blue_bar": np.array([0.58, -0.30, 0.17])})
    assert grounding.holds(shelf, Literal("on_shelf", ("blue_bar",)))
    region = world(objects={**w.objects, "red_cube": np.array([0.30, 0.06, 0.02])})
    assert grounding.holds(region, Literal("in_region", ("red_cube", "near_left")))
    assert not grounding.holds(region, Literal("in_region", ("red_cube", "near_right")))


def test_success_is_read_from_the_post_conditions_not_assumed(registry, grounding):
    skill = registry.ground("pick", ["red_cube"])
    operator = ScriptedOperator(skill, grounding, np.random.default_rng(0))
    assert not operator.succeeded(world())  # nothing held
    held = world(tcp_position=np.array([0.45, 0.0, 0.2]), gripper_grasped=True)
    held.objects["red_cube"][:] = [0.45, 0.0, 0.2]
    assert operator.succeeded(held)


def test_episode_plans_bring_about_the_preconditions(registry):
    place = plan_episode(registry, registry.ground("place_in_drawer", ["blue_bar"]))
    assert place.scenario == "drawer_open" and [str(s) for s in place.setup] == ["pick(blue_bar)"]
    assert plan_episode(registry, registry.ground("close_drawer", [])).scenario == "drawer_open"
    shelf = plan_episode(registry, registry.ground("place_on_shelf", ["red_cube"]))
    assert shelf.scenario == "default" and [str(s) for s in shelf.setup] == ["pick(red_cube)"]
    assert plan_episode(registry, registry.ground("open_drawer", [])).setup == []


@pytest.mark.parametrize(
    ("skill", "arguments", "seed"),
    [
        ("pick", ["red_cube"], 0),
        ("open_drawer", [], 1),
        ("close_drawer", [], 2),
        ("place_in_drawer", ["blue_bar"], 1),
        ("place_on_shelf", ["green_cylinder"], 0),
        ("push", ["red_cube"], 0),
    ],
)
def test_scripted_operator_performs_each_skill_in_process(registry, grounding, skill, arguments, seed):
    """The same controller the scripted operator node runs, on the same physics, without ROS."""
    ground = registry.ground(skill, arguments + (["near_left"] if skill == "push" else []))
    plan = plan_episode(registry, ground)
    workcell = Workcell(plan.scenario)
    workcell.reset(seed)
    arm = SimArm(workcell)
    arm.connect()
    rng = np.random.default_rng(seed)
    for setup in plan.setup:
        assert run_skill(workcell, arm, setup, grounding, rng).success
    assert not grounding.unmet(world_state(workcell, arm), ground.preconditions)
    result = run_skill(workcell, arm, ground, grounding, rng)
    assert result.success and not result.timed_out
    assert not grounding.unmet(world_state(workcell, arm), ground.effects)


@pytest.mark.parametrize(
    ("skill", "scenario", "container", "predicate"),
    [
        ("place_in_drawer", "drawer_open", "drawer_interior", "in_drawer"),
        ("place_on_shelf", "default", "shelf_top", "on_shelf"),
    ],
)
def test_place_skills_put_the_object_clear_of_one_already_there(
    registry, grounding, skill, scenario, container, predicate
):
    """With the cube where the operator once put everything (toward the front of the container's
    middle), the bar goes down flat beside it, and both end up in the container, the cube unmoved.
    (The old operator stacked the bar on the cube for this seed in both containers.)"""
    workcell = Workcell(scenario)
    workcell.reset(1)
    arm = SimArm(workcell)
    arm.connect()
    w = world_state(workcell, arm)
    box = grounding.geometry[container]
    spot = np.asarray(box["centre"], dtype=float) + [-0.03, 0.0, 0.0]
    floor = {"drawer_interior": 0.015, "shelf_top": box["centre"][2] - box["half_size"][2]}[container]
    if container == "drawer_interior":
        spot += grounding.drawer_interior_offset(w)
    workcell.perturb("red_cube", np.array([spot[0], spot[1], floor + 0.021]) - w.objects["red_cube"])
    arm.step(200)
    cube = world_state(workcell, arm).objects["red_cube"].copy()
    assert grounding.holds(world_state(workcell, arm), Literal(predicate, ("red_cube",)))
    rng = np.random.default_rng(1)
    assert run_skill(workcell, arm, registry.ground("pick", ["blue_bar"]), grounding, rng).success
    result = run_skill(workcell, arm, registry.ground(skill, ["blue_bar"]), grounding, rng)
    w = world_state(workcell, arm)
    assert result.success and not result.timed_out
    assert grounding.holds(w, Literal(predicate, ("red_cube",)))
    assert grounding.holds(w, Literal(predicate, ("blue_bar",)))
    assert abs(w.objects["blue_bar"][2] - (floor + 0.015)) < 0.005  # flat on the floor, not on the cube
    assert np.linalg.norm(w.objects["red_cube"] - cube) < 0.01  # not knocked
