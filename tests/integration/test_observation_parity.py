"""Observation parity: a model gets the same tensors from the sim bridge over DDS as in process.

The sim bridge runs as a process of its own (sim time, real time, arm at rest: nobody commands it).
The test takes one frame of each camera and the ``joint_states``, ``gripper/state`` and ``ee_pose``
published at the same sim time, and feeds them through the serving paths: the policy server's
(:class:`InputBuffer` with its decoder, then the schema's ``prepare_image`` as the policy does) and
the classifier node's (:class:`ObservationBuffer`, decoding straight to the model's size). In
process, the same scenario and seed are stepped to that sim time with the rig the engine uses
(:class:`InProcessRig`: the driver's safety layer ticked in front of :class:`SimArm` at the bridge's
control rate), rendered by :class:`WorkcellRenderer` at the bridge's camera size and read with
``state_from_arm`` / ``prepare_image``.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import GripperState
from sensor_msgs.msg import Image, JointState

from meta_robot.camera.image_decoding import color_from_msg
from meta_robot.core.observation import CAMERAS, IMAGE_SIZE, color_topic, prepare_image, state_from_arm
from meta_robot.learning.skill_execution import InputBuffer
from meta_robot.learning.success_monitor import ObservationBuffer
from meta_robot.nodes.policy_server_node import pose_values
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.graph import sim_graph
from meta_robot.ros.launcher import GraphProcesses
from meta_robot.sim.rendering import WorkcellRenderer
from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell
from meta_robot.skills.rollout import InProcessRig

pytestmark = pytest.mark.integration
SCENARIO, SEED = "default", 7
BRIDGE_RATE = 100.0  # Hz: the bridge's control_rate (SimBridgeParameters), also the rig's driver rate
CAMERA_SIZE = 128  # px: the bridge's camera_width/height (SimBridgeParameters), set explicitly below
# Joints [rad], TCP and gripper [m]. JointState, PoseStamped and GripperState carry float64 and both
# sides run the same MuJoCo steps, so the values agree to the bit (measured: no difference at all).
# The tolerance leaves room only for a float32 rounding taken at another point of a path (float32
# spacing is 2.4e-7 at 3 rad) and is far below the millimetres and milliradians a policy acts on.
STATE_TOLERANCE = 1e-5
STREAMS = ("joints", "gripper", "pose", *CAMERAS)
# Sim time [s] of the compared frame: past the objects' settling after the reset (they are placed
# 0.5 mm above the desk), so the comparison is of a scene at rest after a hundred driver ticks.
SETTLED_S = 1.0


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    parameters = {
        "use_sim_time": True,  # stamps are sim time, so a message says which physics step it shows
        "control_rate": BRIDGE_RATE,
        "camera_rate": 5.0,
        "camera_width": CAMERA_SIZE,
        "camera_height": CAMERA_SIZE,
    }
    specs = sim_graph(SCENARIO, seed=SEED, bridge_parameters=parameters)
    with GraphProcesses(specs, os.environ, log_dir=tmp_path_factory.mktemp("logs")) as running:
        yield running


class _ByStamp:
    """Every stream's recent messages by header stamp (ns), to find one sim time all of them show."""

    def __init__(self, keep: int = 400) -> None:
        self.keep = keep
        self.lock = threading.Lock()
        self.messages: dict[str, OrderedDict[int, object]] = {name: OrderedDict() for name in STREAMS}

    def add(self, stream: str, msg) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self.lock:
            queue = self.messages[stream]
            queue[stamp] = msg
            while len(queue) > self.keep:
                queue.popitem(last=False)

    def common(self, after_ns: int) -> int | None:
        """The earliest stamp from ``after_ns`` on that every stream has."""
        with self.lock:
            stamps = set.intersection(*(set(q) for q in self.messages.values()))
        stamps = {s for s in stamps if s >= after_ns}
        return min(stamps) if stamps else None

    def at(self, stamp: int) -> dict[str, object]:
        with self.lock:
            return {name: q[stamp] for name, q in self.messages.items()}


def _bridge_observation(graph, timeout: float = 60.0) -> tuple[int, dict[str, object]]:
    """One sim time at which both cameras and the three state streams were all received."""
    seen = _ByStamp()
    with BackgroundNode("parity_probe") as ros:
        subscribe = ros.node.create_subscription
        subscribe(JointState, "joint_states", lambda m: seen.add("joints", m), 50)
        subscribe(GripperState, "gripper/state", lambda m: seen.add("gripper", m), 50)
        subscribe(PoseStamped, "ee_pose", lambda m: seen.add("pose", m), 50)
        for camera in CAMERAS:
            subscribe(Image, color_topic(camera), lambda m, c=camera: seen.add(c, m), 5)
        deadline = time.monotonic() + timeout
        while (stamp := seen.common(round(SETTLED_S * 1e9))) is None:
            graph.check_running()
            assert time.monotonic() < deadline, "no sim time with both camera frames and the state"
            time.sleep(0.05)
        return stamp, seen.at(stamp)


def _served(messages: dict[str, object]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What the policy receives: the policy server's input buffer filled as its subscriptions fill
    it, decoded by its decoder, and resized by the policy's prepare_image."""
    inputs = InputBuffer(CAMERAS)
    inputs.put("joints", 0.0, list(messages["joints"].position))
    inputs.put("gripper", 0.0, messages["gripper"].width)
    inputs.put("pose", 0.0, pose_values(messages["pose"]))
    for camera in CAMERAS:
        inputs.put(camera, 0.0, messages[camera])
    observation = inputs.observation(0.0, color_from_msg)
    return observation.state, {c: prepare_image(observation.images[c], IMAGE_SIZE, c) for c in CAMERAS}


def _classified(messages: dict[str, object]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What the classifier receives: its node's buffer, decoding straight to the model's size."""
    inputs = ObservationBuffer(CAMERAS)
    inputs.set_joints(messages["joints"].position)
    inputs.set_gripper(messages["gripper"].width)
    pose = pose_values(messages["pose"])
    inputs.set_pose(pose[:3], pose[3:])
    for camera in CAMERAS:
        inputs.set_image(camera, messages[camera], 0)
    observation = inputs.observation(lambda msg: color_from_msg(msg, IMAGE_SIZE))
    assert observation is not None
    return observation.state, dict(observation.images)


def _in_process(stamp_ns: int) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The same scene stepped in process to ``stamp_ns``: the model's state and images, and the
    full-size renders (to tell a render difference from a resize one)."""
    workcell = Workcell(SCENARIO)
    workcell.reset(SEED)
    arm = SimArm(workcell)
    arm.connect()
    rig = InProcessRig(workcell, arm, driver_rate=BRIDGE_RATE)
    rig.advance(round(stamp_ns * 1e-9 * BRIDGE_RATE) / BRIDGE_RATE)
    assert round(workcell.time * 1e9) == stamp_ns, "the rig's ticks do not land on the bridge's"
    renderer = WorkcellRenderer(workcell, CAMERA_SIZE, CAMERA_SIZE)
    try:
        full = {c: renderer.render(c).color for c in CAMERAS}
    finally:
        renderer.close()
    state = state_from_arm(arm.read_state())
    return state, {c: prepare_image(full[c], IMAGE_SIZE, c) for c in CAMERAS}, full


def test_the_bridge_and_the_in_process_path_give_the_model_the_same_observation(graph):
    stamp, messages = _bridge_observation(graph)
    state, images, full = _in_process(stamp)

    for path, (ros_state, ros_images) in {
        "policy server": _served(messages),
        "classifier": _classified(messages),
    }.items():
        assert ros_state.dtype == state.dtype == np.float32
        np.testing.assert_allclose(ros_state, state, rtol=0, atol=STATE_TOLERANCE, err_msg=path)
        for camera in CAMERAS:
            assert ros_images[camera].shape == (*IMAGE_SIZE, 3) and ros_images[camera].dtype == np.uint8
            # Exact: the bridge publishes raw rgb8 (no compression) at the size it renders, both
            # sides render the same physics state with the same renderer settings, and the one
            # resize is the schema's prepare_image.
            diff = np.abs(ros_images[camera].astype(int) - images[camera].astype(int))
            assert diff.max() == 0, (
                f"{path}, {camera} camera at t={stamp * 1e-9:.3f} s: {np.count_nonzero(diff)} values "
                f"differ (max {diff.max()}); full-size renders differ in "
                f"{np.count_nonzero(color_from_msg(messages[camera]) != full[camera])} values"
            )
