"""Drive the arm to Cartesian targets over ROS, as any commander must: a stream of small steps.

The safety layer refuses targets more than ``max_step`` from the setpoint and holds the arm when
commands stop, so a commander interpolates from where the arm is and keeps publishing at a steady
rate. Used by the demo, the integration tests, the benchmarks and ``meta-robot move``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import ArmCommand, GripperState
from rclpy.node import Node
from std_msgs.msg import String

from meta_robot.core.arm import GRIPPER_MAX_WIDTH, Pose
from meta_robot.core.geometry import quat_slerp
from meta_robot.ros.arm_messages import command_to_msg, pose_from_msg

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # TCP z axis pointing at the desk
MAX_LEAD = 0.05  # m the commanded point may run ahead of the measured TCP (half the default max_step)


@dataclass
class Sample:
    """One row of a move's log: time, the commanded and the measured TCP positions."""

    t: float
    commanded: np.ndarray
    measured: np.ndarray


@dataclass
class MoveResult:
    """What a move achieved."""

    target: np.ndarray
    reached: np.ndarray
    error: float  # m, |reached - target|
    refusals: list[str] = field(default_factory=list)  # safety refusals seen during the move
    samples: list[Sample] = field(default_factory=list)


class ArmCommander:
    """Publishes ArmCommand streams on ``robot_command`` and watches ``ee_pose``.

    The node must be spun by an executor in another thread (the caller's thread blocks in moves).
    """

    def __init__(
        self, node: Node, frame_id: str = "panda_link0", rate: float = 50.0, source: str | None = None
    ) -> None:
        self.node = node
        self.frame_id = frame_id
        self.period = 1.0 / rate
        self.source = source or node.get_name()
        self._lock = threading.Lock()
        self._pose: Pose | None = None
        self._gripper_width: float | None = None
        self._refusals: list[str] = []
        self._pub = node.create_publisher(ArmCommand, "robot_command", 10)
        node.create_subscription(PoseStamped, "ee_pose", self._on_pose, 10)
        node.create_subscription(GripperState, "gripper/state", self._on_gripper, 10)
        node.create_subscription(String, "safety/refusals", self._on_refusal, 10)

    def _on_pose(self, msg: PoseStamped) -> None:
        with self._lock:
            self._pose = pose_from_msg(msg.pose)

    def _on_gripper(self, msg: GripperState) -> None:
        with self._lock:
            self._gripper_width = msg.width

    def _on_refusal(self, msg: String) -> None:
        with self._lock:
            self._refusals.append(msg.data)

    @property
    def pose(self) -> Pose | None:
        """The latest measured TCP pose."""
        with self._lock:
            return self._pose

    def refusals(self) -> list[str]:
        """Every refusal the safety layer has published since this commander started."""
        with self._lock:
            return list(self._refusals)

    def wait_for_state(self, timeout: float = 30.0) -> Pose:
        """Block until the driver publishes the TCP pose; raise TimeoutError naming the topic."""
        deadline = time.monotonic() + timeout
        while (pose := self.pose) is None:
            if time.monotonic() > deadline:
                topic = self.node.resolve_topic_name("ee_pose")
                raise TimeoutError(f"no {topic} within {timeout} s: is a driver or the sim bridge running?")
            time.sleep(0.01)
        return pose

    def send(self, pose: Pose, gripper_width: float) -> None:
        """Publish one absolute command stamped now."""
        now = self.node.get_clock().now().nanoseconds * 1e-9
        self._pub.publish(command_to_msg(pose, gripper_width, now, self.frame_id, self.source))

    def move_to(
        self,
        position: np.ndarray,
        orientation: np.ndarray | None = None,
        gripper_width: float | None = None,
        speed: float = 0.15,
        settle: float = 1.0,
    ) -> MoveResult:
        """Stream a straight line from the current pose to the target at ``speed`` m/s, then hold
        the target for ``settle`` s; return where the arm ended up.

        The commanded point is a carrot on that line kept within ``MAX_LEAD`` of the measured TCP:
        if the driver or this process stalls, the stream resumes from where the arm is instead of
        running ahead of it (which the safety layer would rightly refuse as too large a step).
        """
        start = self.wait_for_state()
        target = np.asarray(position, dtype=float)
        goal_q = DOWN if orientation is None else np.asarray(orientation, dtype=float)
        with self._lock:
            width = gripper_width if gripper_width is not None else (self._gripper_width or GRIPPER_MAX_WIDTH)
            refusals_before = len(self._refusals)
        duration = max(float(np.linalg.norm(target - start.position)) / speed, self.period)
        samples: list[Sample] = []
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < duration + settle:
            s = min(1.0, elapsed / duration)
            commanded = start.position + s * (target - start.position)
            if (measured := self.pose) is not None:
                lead = commanded - measured.position
                distance = float(np.linalg.norm(lead))
                if distance > MAX_LEAD:
                    commanded = measured.position + lead * (MAX_LEAD / distance)
                samples.append(Sample(elapsed, commanded, measured.position.copy()))
            self.send(Pose(commanded, quat_slerp(start.orientation, goal_q, s)), width)
            time.sleep(self.period)
        reached = self.wait_for_state().position
        with self._lock:
            refusals = self._refusals[refusals_before:]
        return MoveResult(target, reached, float(np.linalg.norm(reached - target)), refusals, samples)
