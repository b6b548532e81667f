"""The executive in the sim graph: planner, classifier state, skills over ExecuteSkill, as processes.

Skills are the scripted operator's (privileged, reliable) so that what is tested is the executive:
it plans from the shipped success classifier's estimates, retries a pick that the classifier saw
fail (the object is snatched from the hand as it is lifted), replans when an object it stored is
taken back out, stops on e-stop, and refuses bad goals with a clear message and the arm idle.
Scenes stay like the classifier's training data (one object per container): a classifier trained on
single-object demonstrations misreads two objects in the drawer.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from meta_robot_interfaces.action import ExecuteTask
from meta_robot_interfaces.msg import SkillStatus
from std_srvs.srv import Trigger

from meta_robot.apps.evaluation import Referee
from meta_robot.apps.sim_session import SimSession
from meta_robot.apps.task_evaluation import Perturber, TaskSession
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.graph import sim_graph
from meta_robot.ros.launcher import GraphProcesses
from meta_robot.skills.registry import load_registry
from meta_robot.skills.world import Grounding

pytestmark = pytest.mark.integration
NS = f"executive_test_{os.getpid()}"


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")
    specs = sim_graph(
        "drawer_open",
        seed=3,
        namespace=NS,
        bridge_parameters={"camera_rate": 10.0},
        scripted_operator=True,
        classifier="success_classifier",
        executive="scripted_operator/execute_skill",
    )
    with GraphProcesses(specs, env, log_dir=tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.fixture(scope="module")
def ros(graph):
    with BackgroundNode("executive_test", namespace=NS) as node:
        yield node


@pytest.fixture(scope="module")
def session(graph, ros):
    return TaskSession(SimSession(graph, ros, operator=False, timeout=180.0), recorder=False)


@pytest.fixture(scope="module")
def referee(ros):
    return Referee(ros, Grounding(load_registry()))


def start(session: TaskSession, referee: Referee, seed: int) -> None:
    session.sim.reset("drawer_open", seed, settle=1.0)
    deadline = time.monotonic() + 30
    while referee.world() is None:
        assert time.monotonic() < deadline, "no privileged state from the sim bridge"
        time.sleep(0.1)


def run_perturbed(session, referee, ros, seed: int, goal: str, **perturbation):
    start(session, referee, seed)
    perturber = Perturber(ros, referee, np.random.default_rng(seed), **perturbation)
    session.on_step = perturber.on_step
    perturber.start_episode()
    try:
        result, steps, _ = session.run(ExecuteTask.Goal(goal=goal), seed=seed, timeout=400.0)
    finally:
        session.on_step = lambda msg: None
    truth = sorted(" ".join(a) for a, v in Grounding(load_registry()).atoms(referee.world()).items() if v)
    names = [s.skill for s in steps]
    assert result.success, (result.message, names, perturber.done, truth)
    return result, steps, names, perturber.done, truth


def test_a_pick_the_classifier_saw_fail_is_retried(session, referee, ros):
    """The cube is snatched from the hand as it is lifted: the classifier sees the hand empty and the
    cube on the desk, so the same pick is dispatched again."""
    result, steps, names, done, truth = run_perturbed(
        session, referee, ros, 12, "(holding red_cube)", snatch={"red_cube"}, take_out=False
    )
    assert done == ["red_cube snatched from the hand"]
    assert names == ["pick(red_cube)", "pick(red_cube)"] and [s.verified for s in steps] == [False, True]
    assert result.retries == 1 and result.replans == 0 and "holding red_cube" in truth


def test_an_object_taken_back_out_makes_the_executive_replan(session, referee, ros):
    """The first object put away is taken back out while the next skill runs: the rest of the plan no
    longer reaches the goal, so the executive plans again from what it sees. One object per
    container: scenes like the classifier's training data."""
    result, _, names, done, truth = run_perturbed(
        session, referee, ros, 15, "(and (in_drawer red_cube) (on_shelf blue_bar))", snatch=set()
    )
    stored = done[0].split()[0]
    assert done == [f"{stored} taken back out onto the desk"]
    assert result.replans >= 1 and names.count(f"pick({stored})") == 2, names
    assert {"in_drawer red_cube", "on_shelf blue_bar"} <= set(truth), truth


def test_bad_goals_are_refused_with_a_clear_message_and_no_skill_runs(session, referee):
    start(session, referee, 13)
    for goal, words in (
        (ExecuteTask.Goal(goal="(in_drawer purple_cube)"), ["purple_cube", "known objects"]),
        (ExecuteTask.Goal(goal="(levitating red_cube)"), ["levitating", "known predicates"]),
        (ExecuteTask.Goal(task="make_coffee"), ["make_coffee", "fill_drawer"]),
        (ExecuteTask.Goal(goal="(and (in_drawer red_cube) (on_shelf red_cube))"), ["unsatisfiable"]),
    ):
        result, steps, _ = session.run(goal, seed=13, timeout=60.0)
        assert not result.success and steps == [] and result.skills_executed == 0
        for word in words:
            assert word in result.message, (word, result.message)


def test_an_estop_stops_the_task_and_the_running_skill(session, referee, ros):
    start(session, referee, 14)
    estop = ros.node.create_client(Trigger, "safety/estop")
    reset = ros.node.create_client(Trigger, "safety/reset_estop")
    assert estop.wait_for_service(timeout_sec=10) and reset.wait_for_service(timeout_sec=10)

    def on_step(msg: SkillStatus) -> None:
        if msg.state == SkillStatus.RUNNING:
            estop.call_async(Trigger.Request())

    session.on_step = on_step
    try:
        result, steps, _ = session.run(ExecuteTask.Goal(goal="(in_drawer blue_bar)"), seed=14, timeout=120.0)
    finally:
        session.on_step = lambda msg: None
        future = reset.call_async(Trigger.Request())
        deadline = time.monotonic() + 10
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not result.success and "e-stop" in result.message, result.message
    assert len(steps) == 1 and not steps[0].verified
