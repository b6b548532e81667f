"""The policy server node in the sim graph, as separate processes over DDS.

The policy is a real BC network checkpoint whose output normalisation pins it to one action (3 cm
ahead of the TCP in +x, gripper open): the test knows where the arm must go, whatever the weights.
Checks: the server answers an ExecuteSkill goal and the arm moves; cancel stops the arm; an unknown
skill is refused with a reason; a missing or corrupt checkpoint ends the node at start-up.
"""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import pytest
import torch
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.action import ExecuteSkill
from meta_robot_interfaces.msg import SkillStatus
from rclpy.action import ActionClient

from meta_robot.learning.bc_policy import BCConfig, BCNetwork, save_bc_policy
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.graph import learned_skill_nodes, sim_graph
from meta_robot.ros.launcher import GraphProcesses, node_command, write_overrides

pytestmark = pytest.mark.integration
STEP_X = 0.03  # m ahead of the TCP the pinned policy always asks for


def _pinned_policy(path) -> None:
    config = BCConfig(
        skills=("pick", "open_drawer"),
        vocabulary=("<none>", "red_cube", "blue_bar", "green_cylinder"),
        image_size=(32, 32),
        channels=8,
        feature_dim=16,
        embed_dim=8,
        hidden=32,
        chunk=4,
    )
    torch.manual_seed(0)
    network = BCNetwork(config)
    with torch.no_grad():
        network.action_mean.copy_(torch.tensor([STEP_X, 0.0, 0.0, 0.0, 0.0, 0.0, 0.08]))
        network.action_std.fill_(1e-6)  # whatever the trunk says, the action is the mean
    save_bc_policy(network, path, extra={"command": "test_policy_server._pinned_policy"})


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "pinned.safetensors"
    _pinned_policy(path)
    specs = [
        *sim_graph("default", seed=3, bridge_parameters={"camera_rate": 10.0}),
        *learned_skill_nodes(policy=str(path), classifier=None),
    ]
    with GraphProcesses(specs, os.environ, log_dir=tmp_path_factory.mktemp("logs")) as running:
        yield running
        running.check_running()


class Client:
    def __init__(self, ros: BackgroundNode, graph: GraphProcesses) -> None:
        self.pose: np.ndarray | None = None
        self.status: list[SkillStatus] = []
        ros.node.create_subscription(PoseStamped, "ee_pose", self._on_pose, 10)
        ros.node.create_subscription(SkillStatus, "skill_status", self.status.append, 10)
        self.action = ActionClient(ros.node, ExecuteSkill, "policy/execute_skill")
        deadline = time.monotonic() + 180
        while not self.action.wait_for_server(timeout_sec=0.5) or self.pose is None:
            graph.check_running()
            assert time.monotonic() < deadline, "policy server or sim bridge never came up"

    def _on_pose(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self.pose = np.array([p.x, p.y, p.z])

    def send(self, skill: str, arguments: list[str], timeout: float = 0.0):
        feedback: list[ExecuteSkill.Feedback] = []
        future = self.action.send_goal_async(
            ExecuteSkill.Goal(skill=skill, arguments=arguments, timeout=timeout),
            feedback_callback=lambda msg: feedback.append(msg.feedback),
        )
        _wait(future.done, 30, "goal response")
        handle = future.result()
        assert handle.accepted
        return handle, feedback


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_goal_runs_the_policy_in_closed_loop_and_the_arm_moves(graph) -> None:
    with BackgroundNode("test_policy_goal") as ros:
        client = Client(ros, graph)
        start = client.pose.copy()
        handle, feedback = client.send("pick", ["red_cube"], timeout=2.0)
        result_future = handle.get_result_async()
        _wait(result_future.done, 60, "the result")
        result = result_future.result().result
        assert result.outcome == ExecuteSkill.Result.TIMED_OUT, result.message
        assert "timed out" in result.message
        assert feedback and feedback[-1].step > 5  # ~10 Hz for 2 s
        moved = client.pose - start
        assert moved[0] > 0.05, f"the arm should have moved in +x, moved {moved}"
        assert abs(moved[1]) < 0.02 and abs(moved[2]) < 0.02
        running = [s for s in client.status if s.state == SkillStatus.RUNNING]
        assert running and running[0].skill == "pick" and list(running[0].arguments) == ["red_cube"]
        assert client.status[-1].state == SkillStatus.TIMED_OUT


def test_cancel_stops_the_arm(graph) -> None:
    with BackgroundNode("test_policy_cancel") as ros:
        client = Client(ros, graph)
        handle, _ = client.send("open_drawer", [], timeout=30.0)
        time.sleep(1.0)
        cancel = handle.cancel_goal_async()
        _wait(cancel.done, 10, "the cancel response")
        result_future = handle.get_result_async()
        _wait(result_future.done, 10, "the result")
        assert result_future.result().result.outcome == ExecuteSkill.Result.PREEMPTED
        time.sleep(0.3)
        stopped = client.pose.copy()
        time.sleep(1.0)
        assert np.linalg.norm(client.pose - stopped) < 0.005, "the arm kept moving after cancel"


def test_an_unknown_skill_is_refused_with_the_reason(graph) -> None:
    with BackgroundNode("test_policy_unknown") as ros:
        client = Client(ros, graph)
        for skill, arguments, reason in (
            ("fly", [], "fly"),
            ("pick", ["purple_cone"], "purple_cone"),
            ("place_on_shelf", ["red_cube"], "place_on_shelf"),  # in the registry, not in this policy
        ):
            handle, _ = client.send(skill, arguments)
            result_future = handle.get_result_async()
            _wait(result_future.done, 10, "the result")
            result = result_future.result().result
            assert result.outcome == ExecuteSkill.Result.FAILED
            assert reason in result.message


@pytest.mark.parametrize("content", [None, b"\x00garbage" * 64], ids=["missing", "corrupt"])
def test_a_bad_checkpoint_ends_the_node_at_start_up(tmp_path, content) -> None:
    path = tmp_path / "policy.safetensors"
    if content is not None:
        path.write_bytes(content)
    spec = learned_skill_nodes(policy=str(path), classifier=None)[0]
    command = node_command(spec, write_overrides(spec, tmp_path))
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ)
    assert done.returncode == 2
    assert str(path) in done.stderr
    assert ("no such file" if content is None else "corrupt") in done.stderr
