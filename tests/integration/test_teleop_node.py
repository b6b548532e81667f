"""The teleop node between the sim bridge and a policy, as separate processes over DDS.

The graph's teleop node runs with ``device: topic``: the test publishes OperatorInput samples (the
topic device's device layer) and plays a policy streaming on ``policy/robot_command``. A second
teleop node reads a keyboard from a pty, as from a person's terminal. Checks behaviour: where the
arm and gripper go, and the Intervention messages.

(Named ``test_teleop_node`` because pytest's default import mode cannot collect two test modules
with one basename, and ``tests/unit/test_teleop.py`` exists.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import termios
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
from meta_robot_interfaces.msg import ArmCommand, GripperState, Intervention, OperatorInput

from meta_robot.core.arm import Pose
from meta_robot.ros.arm_messages import command_to_msg
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.commander import DOWN, ArmCommander
from meta_robot.ros.graph import NodeSpec, sim_graph
from meta_robot.ros.launcher import GraphProcesses, node_command, terminate
from meta_robot.ros.operator_messages import sample_from_msg, sample_to_msg
from meta_robot.teleop import EpisodeEventKind, Frame, GripperAction, OperatorSample

pytestmark = pytest.mark.integration
START = np.array([0.45, 0.0, 0.25])  # free space above the desk
RATE = 50.0


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    specs = [
        *sim_graph("default", seed=1, bridge_parameters={"camera_rate": 0.0}),
        NodeSpec(
            name="teleop",
            executable="teleop",
            module="meta_robot.nodes.teleop_node",
            params_files=("safety.yaml", "teleop.yaml"),
            parameters={"teleop": {"device": "topic", "handback_delay": 0.5}},
        ),
    ]
    with GraphProcesses(specs, os.environ, log_dir=tmp_path_factory.mktemp("logs")) as running:
        yield running
        running.check_running()


class Operator:
    """The test's side of the graph: an operator on teleop/operator_input, a policy on
    policy/robot_command, and the arm's measured pose."""

    def __init__(self, node, graph: GraphProcesses) -> None:
        self.node = node
        self.arm = ArmCommander(node, source="pytest")
        self.input_pub = node.create_publisher(OperatorInput, "teleop/operator_input", 10)
        self.policy_pub = node.create_publisher(ArmCommand, "policy/robot_command", 10)
        self.interventions: list[Intervention] = []
        self.gripper_width: float | None = None
        node.create_subscription(GripperState, "gripper/state", self._on_gripper, 10)
        node.create_subscription(Intervention, "teleop/intervention", self.interventions.append, 10)
        deadline = time.monotonic() + 120
        while self.arm.pose is None or self.input_pub.get_subscription_count() == 0:
            graph.check_running()
            assert time.monotonic() < deadline, "sim bridge or teleop node never came up"
            time.sleep(0.1)

    def _on_gripper(self, msg: GripperState) -> None:
        self.gripper_width = msg.width

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def position(self) -> np.ndarray:
        return self.arm.wait_for_state().position

    def send(self, sample: OperatorSample) -> None:
        self.input_pub.publish(sample_to_msg(sample, self.now()))

    def operate(self, sample: OperatorSample, duration: float) -> None:
        """Stream one operator state for ``duration`` s, as a device read at RATE would."""
        end = time.monotonic() + duration
        while time.monotonic() < end:
            self.send(sample)
            time.sleep(1.0 / RATE)

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.02)


class Policy:
    """A policy streaming one absolute target on policy/robot_command until stopped."""

    def __init__(self, operator: Operator, target: np.ndarray) -> None:
        self.operator = operator
        self.target = target
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = command_to_msg(
                Pose(self.target, DOWN), 0.08, self.operator.now(), "panda_link0", "test_policy"
            )
            self.operator.policy_pub.publish(msg)
            time.sleep(1.0 / RATE)

    def __enter__(self) -> Policy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def operator(graph):
    with BackgroundNode("test_operator") as background:
        operator = Operator(background.node, graph)
        result = operator.arm.move_to(START, settle=0.5)
        assert result.error < 0.01, result.refusals[-3:]
        yield operator


def test_operator_input_round_trips_through_the_message():
    sample = OperatorSample(
        "spacemouse", True, (0.5, -1.0, 0.0, 0.25, 0.0, 1.0), Frame.EE, GripperAction.TOGGLE,
        EpisodeEventKind.END_SUCCESS, 0.3,
    )  # fmt: skip
    assert sample_from_msg(sample_to_msg(sample, 12.5)) == sample


def test_arm_follows_the_deadman_and_stops_on_release(operator):
    start = operator.position()
    operator.operate(OperatorSample("scripted", True, (0.0, 1.0, 0.0, 0.0, 0.0, 0.0), speed_scale=1.0), 1.0)
    at_release = operator.position()
    operator.operate(OperatorSample("scripted", False), 0.5)
    settled = operator.position()
    operator.operate(OperatorSample("scripted", False), 0.5)
    later = operator.position()
    moved = at_release - start
    assert moved[1] > 0.03, f"the arm did not move left (+y): {moved}"
    assert np.linalg.norm(moved[[0, 2]]) < 0.3 * moved[1], f"the arm left the commanded axis: {moved}"
    assert np.linalg.norm(settled - at_release) < 0.05 + 0.01, "the arm ran on past the lead after release"
    assert np.linalg.norm(later - settled) < 0.002, "the arm kept moving with the dead-man released"


def test_operator_takes_over_from_a_policy_and_hands_back(operator):
    home = operator.arm.move_to(START, settle=0.5).reached
    policy_target = home + [0.0, -0.05, 0.0]
    operator.interventions.clear()
    with Policy(operator, policy_target):
        operator.wait_until(
            lambda: np.linalg.norm(operator.position() - policy_target) < 0.01,
            "the policy never moved the arm",
        )
        up = OperatorSample("scripted", True, (0.0, 0.0, 1.0, 0.0, 0.0, 0.0), speed_scale=0.5)
        operator.operate(up, 0.8)
        assert [m.active for m in operator.interventions] == [True]
        assert operator.interventions[0].device == "scripted"
        lifted = operator.position()
        assert lifted[2] - policy_target[2] > 0.03, f"the arm followed the policy, not the operator: {lifted}"
        operator.operate(OperatorSample("scripted", False), 0.2)
        assert operator.position()[2] - policy_target[2] > 0.03, "the policy got control back too early"
        operator.wait_until(lambda: len(operator.interventions) == 2, "control never went back to the policy")
        assert not operator.interventions[1].active
        operator.wait_until(
            lambda: np.linalg.norm(operator.position() - policy_target) < 0.01,
            "after the handback the policy did not drive the arm",
        )


def test_keyboard_in_a_terminal_drives_the_arm_and_restores_the_terminal(operator, tmp_path):
    """A second teleop node reads key presses from a pty as from a person's terminal."""
    spec = NodeSpec(
        name="teleop_keyboard",
        executable="teleop",
        module="meta_robot.nodes.teleop_node",
        params_files=("safety.yaml", "teleop.yaml"),
    )
    master, slave = os.openpty()
    log = open(tmp_path / "teleop_keyboard.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(node_command(spec, None), stdin=slave, stdout=log, stderr=subprocess.STDOUT)
    try:
        operator.wait_until(
            lambda: "keyboard teleop" in (tmp_path / "teleop_keyboard.log").read_text(),
            "the keyboard teleop node never started",
            timeout=60,
        )
        start = operator.position()

        def hold_r() -> bool:  # a held key, as the terminal's auto-repeat sends it (30 Hz)
            os.write(master, b"r")
            time.sleep(1 / 30)
            return operator.position()[2] - start[2] > 0.03

        operator.wait_until(hold_r, "the arm did not rise (+z) while r was held")
        os.write(master, b" ")  # gripper: open -> closed
        operator.wait_until(lambda: (operator.gripper_width or 1.0) < 0.01, "the gripper did not close")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert termios.tcgetattr(slave)[3] & termios.ICANON, "the terminal was left in cbreak mode"
    finally:
        terminate(proc)
        log.close()
        os.close(master)
        os.close(slave)
    operator.arm.move_to(START, gripper_width=0.08, settle=0.5)
