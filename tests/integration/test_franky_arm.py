"""The franky backend and the franky driver node against franky-sim over loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from std_srvs.srv import Trigger

from meta_robot.core.arm import ArmError, ArmTarget, Pose
from meta_robot.drivers.franky_arm import FrankyArm, FrankyArmConfig
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.commander import ArmCommander
from meta_robot.ros.graph import robot_graph
from meta_robot.ros.launcher import GraphProcesses

pytestmark = pytest.mark.integration


@pytest.fixture
def arm(franky_sim_address):
    backend = FrankyArm(FrankyArmConfig(robot_ip=franky_sim_address, realtime_config="ignore"))
    backend.connect()
    yield backend
    backend.disconnect()


def wait_until(predicate, timeout: float = 10.0, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(poll)


def wait_until_still(commander: ArmCommander, timeout: float = 10.0) -> np.ndarray:
    """The TCP position once it has stopped moving (franky-sim is shared by the whole module)."""
    previous = commander.wait_for_state().position
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.2)
        current = commander.wait_for_state().position
        if np.linalg.norm(current - previous) < 0.0005:
            return current
        assert time.monotonic() < deadline, "the arm never came to rest"
        previous = current


def test_reads_a_sane_state(arm):
    state = arm.read_state()
    assert state.joint_positions.shape == (7,) and np.all(np.isfinite(state.joint_positions))
    assert 0.2 < state.tcp_pose.position[0] < 0.8 and state.tcp_pose.position[2] > 0.1
    assert abs(np.linalg.norm(state.tcp_pose.orientation) - 1.0) < 1e-6
    assert 0.0 <= state.gripper_width <= 0.081


def test_streamed_targets_move_the_arm_and_hold_stops_it(arm):
    start = arm.read_state().tcp_pose
    offsets = [np.array(v) for v in ((0.02, 0.0, 0.0), (0.04, 0.02, -0.01), (0.05, 0.03, -0.03))]
    for offset in offsets:
        goal = start.position + offset
        for _ in range(150):  # stream at ~100 Hz as the driver node does
            arm.command(ArmTarget(Pose(goal, start.orientation), 0.08))
            time.sleep(0.01)
        wait_until(lambda g=goal: np.linalg.norm(arm.read_state().tcp_pose.position - g) < 0.01)
    # A far target, then hold: the arm stops short of it.
    far = start.position + [0.15, 0.0, 0.0]
    arm.command(ArmTarget(Pose(far, start.orientation), 0.08))
    time.sleep(0.3)
    arm.hold()
    time.sleep(1.0)
    stopped = arm.read_state().tcp_pose.position
    time.sleep(0.5)
    assert np.linalg.norm(arm.read_state().tcp_pose.position - stopped) < 0.002
    assert np.linalg.norm(stopped - far) > 0.02


def test_gripper_closes_and_opens(arm):
    pose = arm.read_state().tcp_pose
    arm.command(ArmTarget(pose, 0.02))
    wait_until(lambda: (arm.command(ArmTarget(pose, 0.02)), arm.read_state().gripper_width)[1] < 0.03)
    arm.command(ArmTarget(pose, 0.08))
    wait_until(lambda: (arm.command(ArmTarget(pose, 0.08)), arm.read_state().gripper_width)[1] > 0.07)


def test_recover_clears_nothing_when_healthy(arm):
    arm.recover()  # franky-sim raises no reflexes; recovery on a healthy arm must be harmless
    assert arm.read_state().joint_positions.shape == (7,)


def test_bad_address_and_config_are_clear_errors():
    with pytest.raises(ArmError, match=r"127\.0\.0\.254"):
        FrankyArm(FrankyArmConfig(robot_ip="127.0.0.254", realtime_config="ignore")).connect()
    with pytest.raises(ValueError, match="robot_ip is required"):
        FrankyArmConfig()
    with pytest.raises(ValueError, match="realtime_config"):
        FrankyArmConfig(robot_ip="1.2.3.4", realtime_config="sometimes")


def test_driver_node_moves_the_arm_through_the_safety_layer(franky_sim_address, tmp_path):
    specs = [
        s for s in robot_graph(franky_sim_address, realtime_config="ignore") if s.name == "franky_driver"
    ]
    with (
        GraphProcesses(specs, os.environ, log_dir=tmp_path) as graph,
        BackgroundNode("franky_test") as ros,
    ):
        commander = ArmCommander(ros.node, source="pytest")
        wait_until(lambda: graph.check_running() or commander.pose is not None, timeout=60, poll=0.1)
        start = wait_until_still(commander)
        result = commander.move_to(start + [0.04, -0.03, -0.02], speed=0.05, settle=4.0)
        assert result.error < 0.01, graph.log_of("/franky_driver")
        # A target beyond the box is refused before it reaches franky (re-sent: on a loaded machine a
        # late-handled command is refused as stale instead) and the arm stays where it was.
        here = commander.wait_for_state()
        outside = Pose(np.array([0.95, here.position[1], here.position[2]]), here.orientation)

        def refused_as_outside() -> bool:
            commander.send(outside, 0.08)
            return any("out_of_workspace" in r for r in commander.refusals())

        wait_until(refused_as_outside, timeout=10, poll=0.05)
        assert np.linalg.norm(commander.wait_for_state().position - here.position) < 0.01
        client = ros.node.create_client(Trigger, "safety/estop")
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(Trigger.Request())
        wait_until(future.done)
        assert future.result().success
        graph.check_running()


def test_driver_node_refuses_to_start_without_an_arm(tmp_path):
    (driver,) = [s for s in robot_graph("127.0.0.253", realtime_config="ignore") if s.name == "franky_driver"]
    from meta_robot.ros.launcher import node_command, write_overrides

    cmd = node_command(driver, write_overrides(driver, tmp_path))
    result = subprocess.run(cmd, env=os.environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "cannot connect to the Franka at 127.0.0.253" in result.stderr
    assert sys.executable  # the node ran under this interpreter
