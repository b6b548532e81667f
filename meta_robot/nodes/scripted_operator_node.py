"""Scripted sim operator node: demonstrates skills through the teleop path, as a person would.

Serves ``scripted_operator/execute_skill`` (ExecuteSkill). For each goal it runs the skill's
privileged-state controller (:mod:`meta_robot.skills.scripted_operator`) and publishes its twists as
OperatorInput on ``teleop/operator_input``; the teleop node (``device: topic``) turns them into robot
commands, so demonstrations cross the same teleop -> safety -> driver path as a SpaceMouse's. Reads
the sim-only ``sim/object_states``: it exists only in simulation. The result's outcome is the
registry's post-conditions checked on privileged state.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.action import ExecuteSkill
from meta_robot_interfaces.msg import GripperState, ObjectStates, OperatorInput
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from meta_robot.ros.entry import run_node
from meta_robot.ros.operator_messages import sample_to_msg
from meta_robot.ros.parameters import declare_config, param
from meta_robot.ros.world_messages import world_from_messages
from meta_robot.skills.registry import RegistryError, load_registry
from meta_robot.skills.scripted_operator import EpisodeClock, OperatorAction, ScriptedOperator, to_sample
from meta_robot.skills.world import Grounding, WorldState
from meta_robot.teleop import TeleopConfig


@dataclass(frozen=True)
class ScriptedOperatorParameters:
    """The scripted operator's own parameters (beside teleop.*, the device's speed limits)."""

    seed: int = param(0, "seeds every demonstration's style, with the episode's count")
    registry: str = param("", "skill registry file; empty: config/skills.yaml")


class ScriptedOperatorNode(Node):
    def __init__(self) -> None:
        super().__init__("scripted_operator")
        self.teleop = declare_config(self, "teleop", TeleopConfig)
        self.parameters = declare_config(self, "", ScriptedOperatorParameters)
        self.registry = load_registry(self.parameters.registry or None)
        self.grounding = Grounding(self.registry)
        self._lock = threading.Lock()
        self._objects: ObjectStates | None = None
        self._pose: PoseStamped | None = None
        self._gripper: GripperState | None = None
        self._episodes = 0
        self._input_pub = self.create_publisher(OperatorInput, "teleop/operator_input", 10)
        self.create_subscription(ObjectStates, "sim/object_states", self._on_objects, 10)
        self.create_subscription(PoseStamped, "ee_pose", self._on_pose, 10)
        self.create_subscription(GripperState, "gripper/state", self._on_gripper, 10)
        self._server = ActionServer(
            self,
            ExecuteSkill,
            "scripted_operator/execute_skill",
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=lambda _: CancelResponse.ACCEPT,
        )
        self.get_logger().info(
            f"scripted operator ready: skills {', '.join(self.registry.skills)}; "
            f"publishing on {self.resolve_topic_name('teleop/operator_input')}"
        )

    def _on_objects(self, msg: ObjectStates) -> None:
        with self._lock:
            self._objects = msg

    def _on_pose(self, msg: PoseStamped) -> None:
        with self._lock:
            self._pose = msg

    def _on_gripper(self, msg: GripperState) -> None:
        with self._lock:
            self._gripper = msg

    def world(self) -> tuple[WorldState, np.ndarray] | None:
        """Privileged world state and the TCP orientation, once every topic has been heard."""
        with self._lock:
            objects, pose, gripper = self._objects, self._pose, self._gripper
        if objects is None or pose is None or gripper is None:
            return None
        return world_from_messages(objects, pose, gripper)

    def _on_goal(self, goal: ExecuteSkill.Goal) -> GoalResponse:
        try:
            self.registry.ground(goal.skill, list(goal.arguments))
        except RegistryError as exc:
            self.get_logger().error(f"refusing goal: {exc}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _sleep_until(self, deadline: float) -> None:
        """Wait on the node's clock (sim time in a sim-time graph), so the operator acts at its rate
        in the simulation's time however fast or slow the simulation runs on this machine."""
        while rclpy.ok() and self._now() < deadline:
            time.sleep(0.002)

    def _execute(self, handle) -> ExecuteSkill.Result:
        goal = handle.request
        skill = self.registry.ground(goal.skill, list(goal.arguments))
        rng = np.random.default_rng([self.parameters.seed, self._episodes])
        self._episodes += 1
        operator = ScriptedOperator(
            skill, self.grounding, rng, self.teleop.max_linear_speed, self.teleop.max_angular_speed
        )
        clock = EpisodeClock(goal.timeout if goal.timeout > 0 else skill.spec.timeout)
        result = ExecuteSkill.Result()
        self.get_logger().info(f"demonstrating {skill} (timeout {clock.timeout:.0f} s)")
        step = 0
        world = None
        while rclpy.ok():
            observed = self.world()
            if observed is None:
                if clock.tick(self._now()):
                    break
                time.sleep(0.05)
                continue
            world, orientation = observed
            if handle.is_cancel_requested:
                self._release()
                handle.canceled()
                result.outcome = ExecuteSkill.Result.PREEMPTED
                result.message = "cancelled"
                return result
            if operator.finished or clock.tick(self._now()):
                break
            action = operator.act(world, orientation, self._now())
            self._publish(action, deadman=True)
            step += 1
            if step % 25 == 0:
                feedback = ExecuteSkill.Feedback(
                    step=step, success_probability=float(operator.succeeded(world))
                )
                handle.publish_feedback(feedback)
            self._sleep_until(self._now() + 1.0 / self.teleop.rate)  # a device's pace
        self._release()
        time.sleep(0.3)  # let the scene settle before judging (objects dropped into a drawer)
        observed = self.world()
        if observed is None:
            handle.abort()
            result.outcome = ExecuteSkill.Result.FAILED
            result.message = (
                "no state from sim/object_states, ee_pose and gripper/state: is this a sim graph?"
            )
            return result
        world = observed[0]
        success = operator.succeeded(world)
        unmet = ", ".join(str(lit) for lit in self.grounding.unmet(world, skill.effects))
        result.success_probability = 1.0 if success else 0.0
        if success:
            result.outcome = ExecuteSkill.Result.SUCCEEDED
            result.message = f"{skill} succeeded in {clock.elapsed:.1f} s"
            handle.succeed()
        else:
            timed_out = not operator.finished
            result.outcome = ExecuteSkill.Result.TIMED_OUT if timed_out else ExecuteSkill.Result.FAILED
            result.message = f"{skill} {'timed out' if timed_out else 'failed'}: unmet {unmet}"
            handle.abort()
        self.get_logger().info(result.message)
        return result

    def _release(self) -> None:
        """Let go of the dead-man (keep the gripper as it is), as an operator lifting their hand."""
        self._publish(OperatorAction(np.zeros(3), np.zeros(3)), deadman=False)

    def _publish(self, action: OperatorAction, deadman: bool) -> None:
        sample = to_sample(action, self.teleop.max_linear_speed, self.teleop.max_angular_speed, deadman)
        self._input_pub.publish(sample_to_msg(sample, self._now()))


def _spin(node: Node) -> None:
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    executor.spin()


def main(args: list[str] | None = None) -> None:
    """Entry point: ``scripted_operator --ros-args --params-file config/teleop.yaml``."""
    sys.exit(run_node(ScriptedOperatorNode, spin=_spin, args=args))


if __name__ == "__main__":
    main()
