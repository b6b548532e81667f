"""The policy server: learned skills as a ROS action, closed loop from camera frame to robot command.

Serves ``policy/execute_skill`` (ExecuteSkill) for each robot it drives (parameter ``robots``: robot
namespaces, default the node's own). Each control tick (``rate`` Hz, on the node's clock: sim time
in a sim-time graph) it builds every running robot's observation from the latest camera images and
proprioception, asks the policy for all of them in one batched call, and publishes each action as an
absolute ArmCommand on ``<robot>/<command_topic>`` (``robot_command``, or ``policy/robot_command``
behind a teleop node that lets an operator take over). It publishes ``skill_status`` (which the
success classifier reads to know what to judge) and ends a goal when the classifier's debounced
``classifier/skill_success`` says it is done, at its timeout, on cancel or on a bad input; in every
case but success it stops the arm by commanding the measured pose.

The policy (goal-conditioned BC today; EMBR and MELD later) is loaded by name from the checkpoint
manifest or by path, placed on CUDA when present, and warmed up before the action server accepts a
goal. A missing or corrupt checkpoint ends the process at start-up with a message naming it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.action import ExecuteSkill
from meta_robot_interfaces.msg import ArmCommand, GripperState, SkillStatus, SkillSuccess
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import Image, JointState

from meta_robot.camera.image_decoding import color_from_msg
from meta_robot.core.arm import Pose
from meta_robot.core.observation import color_topic
from meta_robot.learning.checkpoint_registry import resolve_checkpoint
from meta_robot.learning.policy import Action, PolicyError, SkillRequest, load_policy
from meta_robot.learning.skill_execution import InputBuffer, Outcome, SkillExecutor, SkillSession
from meta_robot.ros.arm_messages import command_to_msg
from meta_robot.ros.entry import run_node
from meta_robot.ros.parameters import declare_config, param
from meta_robot.ros.qos import LATEST_ONLY
from meta_robot.safety.limits import SafetyLimits
from meta_robot.skills.registry import RegistryError, load_registry


@dataclass
class Running:
    """A goal being executed: its session, its action handle, and the future its execute callback
    awaits (set once the session has ended)."""

    session: SkillSession
    handle: object
    finished: Future
    reported_step: int = -1

    def end(self) -> None:
        if not self.finished.done():
            self.finished.set_result(True)


@dataclass
class RobotChannel:
    """Inputs, command publisher and running goal of one robot."""

    name: str
    inputs: InputBuffer
    command_pub: object
    status_pub: object
    running: Running | None = None

    def topic(self, relative: str) -> str:
        return f"{self.name}/{relative}" if self.name else relative


@dataclass(frozen=True)
class PolicyServerParameters:
    """The policy server's parameters (config/policy_server.yaml sets only what differs)."""

    policy: str = param("goal_conditioned_bc", "a name in checkpoints/manifest.yaml, or a .safetensors path")
    device: str = param("", "empty: CUDA when present, else the CPU; or cpu, cuda, cuda:1")
    rate: float = param(10.0, "Hz, control steps (camera frame -> robot command)")
    robots: tuple[str, ...] = param(
        ("",), "robot namespaces served (one action server each); empty: this node's"
    )
    command_topic: str = param(
        "robot_command", "policy/robot_command behind a teleop node (operator takeover)"
    )
    max_batch: int = param(16, "observations per policy call when several robots run at once")
    max_input_age: float = param(
        0.5, "s; older camera/state inputs pause the skill (the watchdog holds the arm)"
    )
    registry: str = param("", "skill registry file; empty: config/skills.yaml")

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0 Hz, got {self.rate}")


class PolicyServerNode(Node):
    def __init__(self) -> None:
        super().__init__("policy_server")
        self.limits = declare_config(self, "safety", SafetyLimits)
        p = declare_config(self, "", PolicyServerParameters)
        rate = p.rate
        self.registry = load_registry(p.registry or None)

        name = p.policy
        path = resolve_checkpoint(name, "policy")
        self.policy = load_policy(path, device=p.device or None)
        self.get_logger().info(
            f"loaded {self.policy.kind} policy from {path} on {self.policy.device}: skills "
            f"{', '.join(self.policy.skills)}; cameras {', '.join(self.policy.cameras)}"
        )
        started = time.perf_counter()
        self.policy.warm_up()
        self.get_logger().info(f"warmed up in {time.perf_counter() - started:.2f} s")
        self.executor_core = SkillExecutor(self.policy, p.max_batch)
        self._unusable: dict[str, str] = {}

        command_topic = p.command_topic
        self.robots: dict[str, RobotChannel] = {}
        for robot in [r.strip("/") for r in p.robots]:
            channel = RobotChannel(
                robot,
                InputBuffer(self.policy.cameras, p.max_input_age),
                None,
                None,
            )
            channel.command_pub = self.create_publisher(ArmCommand, channel.topic(command_topic), 10)
            channel.status_pub = self.create_publisher(SkillStatus, channel.topic("skill_status"), 10)
            for camera in self.policy.cameras:
                self.create_subscription(
                    Image,
                    channel.topic(color_topic(camera)),
                    lambda msg, c=channel, cam=camera: self._on_input(c, cam, msg),
                    LATEST_ONLY,
                )
            self.create_subscription(
                JointState,
                channel.topic("joint_states"),
                lambda msg, c=channel: self._on_input(c, "joints", list(msg.position)),
                LATEST_ONLY,
            )
            self.create_subscription(
                GripperState,
                channel.topic("gripper/state"),
                lambda msg, c=channel: self._on_input(c, "gripper", msg.width),
                LATEST_ONLY,
            )
            self.create_subscription(
                PoseStamped,
                channel.topic("ee_pose"),
                lambda msg, c=channel: self._on_input(c, "pose", pose_values(msg)),
                LATEST_ONLY,
            )
            self._subscribe_success(channel)
            ActionServer(
                self,
                ExecuteSkill,
                channel.topic("policy/execute_skill"),
                execute_callback=self._executor_for(channel),
                goal_callback=self._on_goal,
                cancel_callback=lambda _: CancelResponse.ACCEPT,
            )
            self.robots[robot] = channel
        self.create_timer(1.0 / rate, self._tick)
        names = ", ".join(
            self.resolve_topic_name(c.topic("policy/execute_skill")) for c in self.robots.values()
        )
        self.get_logger().info(
            f"serving {names} at {rate:g} Hz; commands on {command_topic} in frame '{self.limits.base_frame}'"
        )

    def _subscribe_success(self, channel: RobotChannel) -> None:
        """The success classifier's debounced events for this robot's running skill."""

        def on_success(msg: SkillSuccess) -> None:
            if channel.running is not None:
                channel.running.session.on_success_estimate(
                    msg.skill, list(msg.arguments), msg.success_probability, msg.succeeded
                )

        self.create_subscription(SkillSuccess, channel.topic("classifier/skill_success"), on_success, 10)

    # -- inputs ------------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_input(self, channel: RobotChannel, name: str, value) -> None:
        # Freshness is judged on arrival time on our clock: a stamp from another clock must not stall us.
        channel.inputs.put(name, self._now(), value)

    def _decode(self, msg: Image) -> np.ndarray:
        return color_from_msg(msg)  # at camera size: the policy resizes with the schema's prepare_image

    # -- goals -------------------------------------------------------------------------------------
    def _on_goal(self, goal: ExecuteSkill.Goal) -> GoalResponse:
        return GoalResponse.ACCEPT  # bad goals are aborted with a message, which a rejection cannot carry

    def _executor_for(self, channel: RobotChannel):
        """The action's execute callback for ``channel``: a coroutine function, so rclpy awaits it."""

        async def execute(handle) -> ExecuteSkill.Result:
            return await self._execute(channel, handle)

        return execute

    async def _execute(self, channel: RobotChannel, handle) -> ExecuteSkill.Result:
        """Start the session and wait (without holding a thread: the control tick drives it) until
        it ends; then stop the arm unless it succeeded, and answer."""
        goal = handle.request
        result = ExecuteSkill.Result()
        try:
            ground = self.registry.ground(goal.skill, list(goal.arguments))
            timeout = goal.timeout if goal.timeout > 0 else ground.spec.timeout
            session = self.executor_core.start(
                channel.name, SkillRequest(goal.skill, tuple(goal.arguments)), self._now(), timeout
            )
        except (RegistryError, PolicyError) as exc:
            self.get_logger().error(f"refusing {goal.skill}{tuple(goal.arguments)}: {exc}")
            result.outcome, result.message = Outcome.FAILED, str(exc)
            handle.abort()
            return result
        running = Running(session, handle, Future())
        previous = channel.running
        if previous is not None:
            previous.session.finish(Outcome.PREEMPTED, f"preempted by a new goal {ground}")
            previous.end()
        channel.running = running
        self.get_logger().info(
            f"executing {ground} with the {self.policy.kind} policy (timeout {timeout:.0f} s)"
        )
        await running.finished
        replaced = channel.running is not running  # a newer goal drives this robot now
        if not replaced:
            channel.running = None
        if session.outcome is not Outcome.SUCCEEDED and not replaced:
            self._stop_arm(channel)
        self._publish_status(channel, session)
        result.outcome = int(session.outcome if session.outcome is not None else Outcome.PREEMPTED)
        result.success_probability = float(session.success_probability)
        result.message = session.message or "shutting down"
        self.get_logger().info(
            f"{ground}: {Outcome(result.outcome).name.lower()} after {session.steps} steps: {result.message}"
        )
        if result.outcome == Outcome.SUCCEEDED:
            handle.succeed()
        elif result.outcome == Outcome.PREEMPTED and handle.is_cancel_requested:
            handle.canceled()
        else:
            handle.abort()
        return result

    # -- control loop ------------------------------------------------------------------------------
    def _tick(self) -> None:
        """One control step for every robot running a skill, in one batched policy call."""
        now = self._now()
        running = [c.running for c in self.robots.values() if c.running is not None]
        for r in running:
            if r.handle.is_cancel_requested:
                r.session.finish(Outcome.PREEMPTED, "cancelled")
        sessions = [r.session for r in running if r.session.outcome is None]
        if sessions:
            inputs = {name: c.inputs for name, c in self.robots.items()}
            frames = {s.robot: self._frame_stamp(self.robots[s.robot]) for s in sessions}
            actions = self.executor_core.step(sessions, inputs, now, self._decode)
            for session in sessions:
                channel = self.robots[session.robot]
                action = actions.get(session.robot)
                if action is not None and session.outcome is None:
                    self._send(channel, action)
                    self._publish_status(channel, session, frames[session.robot])
                else:
                    self._publish_status(channel, session)
        for r in running:
            if r.session.outcome is not None:
                r.end()
            elif r.session.steps != r.reported_step:
                r.reported_step = r.session.steps
                r.handle.publish_feedback(
                    ExecuteSkill.Feedback(
                        step=r.session.steps, success_probability=r.session.success_probability
                    )
                )

    def _frame_stamp(self, channel: RobotChannel):
        """Stamp of the first camera's latest image: the frame this step acts on."""
        latest = channel.inputs.latest.get(self.policy.cameras[0])
        return None if latest is None else latest.value.header.stamp

    def _send(self, channel: RobotChannel, action: Action) -> None:
        msg = command_to_msg(
            Pose(action.position, action.orientation),
            action.gripper_width,
            self._now(),
            self.limits.base_frame,
            f"policy/{self.policy.kind}",
        )
        channel.command_pub.publish(msg)

    def _stop_arm(self, channel: RobotChannel) -> None:
        """Command the measured pose (gripper as it is): the arm stops where it is, holding any object."""
        pose = channel.inputs.latest.get("pose")
        gripper = channel.inputs.latest.get("gripper")
        if pose is None or gripper is None:
            return
        values = np.asarray(pose.value, dtype=float)
        self._send(channel, Action(values[:3], values[3:7], float(gripper.value)))

    def _publish_status(self, channel: RobotChannel, session: SkillSession, frame_stamp=None) -> None:
        """``skill_status``; after a control step its stamp is the camera frame the step acted on (so
        frame -> command latency can be measured from outside), otherwise now."""
        msg = SkillStatus()
        msg.header.stamp = frame_stamp if frame_stamp is not None else self.get_clock().now().to_msg()
        msg.skill = session.request.skill
        msg.arguments = list(session.request.arguments)
        msg.state = {
            None: SkillStatus.RUNNING,
            Outcome.SUCCEEDED: SkillStatus.SUCCEEDED,
            Outcome.FAILED: SkillStatus.FAILED,
            Outcome.TIMED_OUT: SkillStatus.TIMED_OUT,
            Outcome.PREEMPTED: SkillStatus.PREEMPTED,
        }[session.outcome]
        msg.step = session.steps
        msg.success_probability = float(session.success_probability)
        channel.status_pub.publish(msg)

    def shutdown(self) -> None:
        """Stop every robot that was running a skill (a crashed or killed server leaves arms stopped:
        its commands stop and each driver's watchdog holds the arm)."""
        for channel in self.robots.values():
            if channel.running is not None:
                channel.running.session.finish(Outcome.PREEMPTED, "policy server shutting down")
                self._stop_arm(channel)


def pose_values(msg: PoseStamped) -> list[float]:
    """``ee_pose`` as the input buffer keeps it: TCP position, then orientation xyzw (the schema's)."""
    p, q = msg.pose.position, msg.pose.orientation
    return [p.x, p.y, p.z, q.x, q.y, q.z, q.w]


def _spin(node: Node) -> None:
    # One thread: goals await a future instead of holding a thread, and rclpy's multi-threaded
    # executor could not keep up with 100 Hz state topics on 2 cores (ticks fell to 2-3 Hz).
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.spin()


def main(args: list[str] | None = None) -> None:
    """Entry point: ``policy_server --ros-args --params-file config/policy_server.yaml``."""
    sys.exit(run_node(PolicyServerNode, spin=_spin, shutdown=lambda n: n.shutdown(), args=args))


if __name__ == "__main__":
    main()
