"""The simulated workcell core: scenarios, resets, perturbations, the controller and the cameras."""

from __future__ import annotations

import os

import numpy as np
import pytest

from meta_robot.core.arm import ArmTarget, Pose
from meta_robot.core.geometry import quat_angle
from meta_robot.sim.scenario import available_scenarios, load_scenario
from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell

os.environ.setdefault("MUJOCO_GL", "egl")
DOWN = np.array([1.0, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def workcell() -> Workcell:
    return Workcell("default")


@pytest.fixture
def arm(workcell) -> SimArm:
    workcell.reset(0)
    sim_arm = SimArm(workcell)
    sim_arm.connect()
    return sim_arm


def positions(wc: Workcell) -> dict[str, np.ndarray]:
    return {s.name: s.position.copy() for s in wc.object_states()}


def test_same_seed_same_state_other_seed_other_state(workcell):
    workcell.reset(5)
    first = positions(workcell)
    workcell.reset(6)
    other = positions(workcell)
    workcell.reset(5)
    again = positions(workcell)
    assert all(np.allclose(first[n], again[n]) for n in first)
    assert any(not np.allclose(first[n], other[n]) for n in first)


def test_objects_start_apart_and_on_the_desk(workcell):
    scenario = load_scenario("default")
    for seed in range(20):
        workcell.reset(seed)
        states = workcell.object_states()
        for i, a in enumerate(states):
            assert 0.0 < a.position[2] < 0.05
            for b in states[i + 1 :]:
                assert np.linalg.norm(a.position[:2] - b.position[:2]) >= scenario.min_separation - 1e-9


def test_objects_settle_without_falling_through(workcell):
    workcell.reset(1)
    before = positions(workcell)
    workcell.step(500)
    after = positions(workcell)
    for name in before:
        assert np.linalg.norm(after[name] - before[name]) < 0.005, name


def test_drawer_scenario_opens_the_drawer(workcell):
    workcell.reset(2, "drawer_open")
    assert 0.08 <= workcell.scene_joint_positions()["drawer_slide"] <= 0.16
    workcell.reset(2, "default")
    assert workcell.scene_joint_positions()["drawer_slide"] == 0.0


def test_time_never_runs_backwards_across_resets(workcell):
    workcell.reset(0)
    workcell.step(10)
    t = workcell.time
    workcell.reset(1)
    assert workcell.time >= t


def test_unknown_scenario_and_object_are_clear_errors(workcell):
    with pytest.raises(ValueError, match=r"unknown scenario 'nope'.*default"):
        Workcell("nope")
    assert {"default", "drawer_open"} <= set(available_scenarios())
    with pytest.raises(KeyError, match="red_cube"):
        workcell.perturb("purple_teapot", np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        workcell.perturb("red_cube", np.array([np.nan, 0, 0]))


def test_perturb_moves_the_object(workcell):
    workcell.reset(3)
    before = positions(workcell)["red_cube"]
    workcell.perturb("red_cube", np.array([0.05, -0.02, 0.0]), yaw=0.3)
    assert np.allclose(positions(workcell)["red_cube"], before + [0.05, -0.02, 0.0])


def test_missing_panda_assets_fail_loudly(monkeypatch):
    from meta_robot.sim import assets

    monkeypatch.setattr(assets, "PANDA_RELATIVE", assets.PANDA_RELATIVE.with_name("no_such_panda.xml"))
    with pytest.raises(FileNotFoundError, match="Franka Panda model is missing"):
        assets.panda_mjcf()


@pytest.mark.parametrize(
    "target",
    [(0.50, 0.00, 0.30), (0.40, 0.20, 0.20), (0.45, -0.15, 0.15), (0.35, -0.10, 0.45), (0.60, 0.05, 0.25)],
)
def test_controller_reaches_targets(arm, target):
    arm.command(ArmTarget(Pose(np.array(target), DOWN), 0.08))
    arm.step(1500)
    state = arm.read_state()
    assert np.linalg.norm(state.tcp_pose.position - target) < 0.01
    assert quat_angle(state.tcp_pose.orientation, DOWN) < np.radians(2)
    assert np.linalg.norm(state.tcp_linear_velocity) < 0.01


def test_hold_stops_the_arm(arm):
    arm.command(ArmTarget(Pose(np.array([0.6, 0.1, 0.2]), DOWN), 0.08))
    arm.step(100)
    arm.hold()
    arm.step(50)
    held = arm.read_state().tcp_pose.position
    arm.step(500)
    assert np.linalg.norm(arm.read_state().tcp_pose.position - held) < 0.003


def test_grasp_and_lift_a_cube(arm, workcell):
    cube = positions(workcell)["red_cube"]
    yaw = 2 * np.arctan2(
        workcell.object_states()[0].orientation[2], workcell.object_states()[0].orientation[3]
    )
    # Hand pointing down, rotated about z to the cube's yaw (fingers close along the hand's y axis).
    down_yawed = np.array([np.cos(yaw / 2), np.sin(yaw / 2), 0.0, 0.0])
    for position, width, steps in (
        (cube + [0, 0, 0.10], 0.08, 1500),
        (cube + [0, 0, 0.0], 0.08, 1500),
        (cube + [0, 0, 0.0], 0.0, 600),
        (cube + [0, 0, 0.15], 0.0, 1500),
    ):
        arm.command(ArmTarget(Pose(position, down_yawed), width))
        arm.step(steps)
    state = arm.read_state()
    assert state.gripper_grasped
    assert 0.03 < state.gripper_width < 0.045  # closed on the 4 cm cube
    assert positions(workcell)["red_cube"][2] > cube[2] + 0.10


def test_rendered_frames_have_realsense_shapes(workcell):
    from meta_robot.sim.rendering import WorkcellRenderer

    workcell.reset(0)
    renderer = WorkcellRenderer(workcell, 128, 96)
    try:
        for camera in ("front", "wrist"):
            frame = renderer.render(camera)
            assert frame.color.shape == (96, 128, 3) and frame.depth.shape == (96, 128)
            valid = frame.depth[frame.depth > 0]
            assert valid.size > 0.5 * frame.depth.size
            assert 50 < np.median(valid) < 3000  # mm: the desk is between 5 cm and 3 m away
            assert frame.color.std() > 5  # not a blank image
            assert frame.intrinsics.fy > 0 and frame.intrinsics.width == 128
        with pytest.raises(KeyError, match="front"):
            renderer.render("ceiling")
    finally:
        renderer.close()


def test_a_pushed_drawer_closes_to_the_joints_stop(workcell, arm):
    """Closed is joint 0: nothing of the cabinet catches the drawer before it (its front once caught
    on the cabinet's sides and its back on the cabinet's back 10 mm out, so a shut drawer read 10 mm
    open, 5 mm from the 15 mm "closed" threshold)."""
    import mujoco

    m, d = workcell.model, workcell.data
    joint = m.joint("drawer_slide")
    d.qpos[joint.qposadr[0]] = 0.05
    mujoco.mj_forward(m, d)
    for _ in range(1500):  # 3 s pushed shut with 20 N, as closed fingers on the knob would
        d.qfrc_applied[joint.dofadr[0]] = -20.0
        workcell.step()
    d.qfrc_applied[joint.dofadr[0]] = 0.0
    assert workcell.scene_joint_positions()["drawer_slide"] < 0.001
    workcell.reset(0)  # a reset with the drawer closed leaves it at its stop, not pushed out
    workcell.step(250)
    assert workcell.scene_joint_positions()["drawer_slide"] < 0.001
