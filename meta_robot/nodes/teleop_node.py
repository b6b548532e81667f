"""The teleop node: an operator device, and the arbiter between it and a running policy.

Polls the device (``teleop.device``: keyboard, spacemouse, gamepad, or ``topic`` for OperatorInput
messages on ``teleop/operator_input`` from the scripted sim operator or a remote device) at
``teleop.rate`` and, while the operator holds control, streams absolute ArmCommands on
``robot_command`` (stamped now, in the safety layer's base frame, source ``teleop/<device>``).
Policy commands on ``policy/robot_command`` are forwarded unchanged while the operator is idle and
dropped while the operator holds control. It publishes ``teleop/intervention`` when an operator takes
over from (or hands back to) a running policy, ``teleop/episode_event`` for the device's episode
keys, and re-publishes hardware samples on ``teleop/operator_input`` so the recorder sees what the
operator did. With an idle operator and no policy it publishes nothing: the driver's watchdog holds
the arm. While the e-stop is latched it commands nothing.
"""

from __future__ import annotations

import sys

from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import ArmCommand, EpisodeEvent, GripperState, Intervention, OperatorInput
from rclpy.node import Node
from std_msgs.msg import Bool

from meta_robot.core.arm import Pose
from meta_robot.ros.arm_messages import command_to_msg, pose_from_msg, seconds_to_stamp
from meta_robot.ros.driver_interface import LATCHED
from meta_robot.ros.entry import run_node
from meta_robot.ros.operator_messages import sample_from_msg, sample_to_msg
from meta_robot.ros.parameters import declare_config
from meta_robot.safety.limits import SafetyLimits
from meta_robot.teleop import (
    Arbiter,
    EpisodeEventKind,
    OperatorSample,
    TargetIntegrator,
    TeleopConfig,
    TopicDevice,
    Transition,
    open_device,
)
from meta_robot.teleop.devices import KEYBOARD_HELP


class TeleopNode(Node):
    """Device -> integrator -> arbiter -> robot_command, at a fixed rate."""

    def __init__(self) -> None:
        super().__init__("teleop")
        self.config = declare_config(self, "teleop", TeleopConfig)
        self.limits = declare_config(self, "safety", SafetyLimits)
        self.config.check_against(self.limits)
        self.device = open_device(self.config.device, self.config.device_options(self.now))
        self.topic_device = self.device if isinstance(self.device, TopicDevice) else None
        self.hardware = self.topic_device is None
        self.integrator = TargetIntegrator(self.config.integrator_config(self.limits))
        self.arbiter = Arbiter(self.config.arbiter_config())
        self.period = 1.0 / self.config.rate

        self._measured: Pose | None = None
        self._gripper_width: float | None = None
        self._commanded_width: float | None = None  # last width sent on robot_command by anyone via us
        self._estop = False
        self._last_tick: float | None = None

        self._command_pub = self.create_publisher(ArmCommand, "robot_command", 10)
        self._intervention_pub = self.create_publisher(Intervention, "teleop/intervention", 10)
        self._event_pub = self.create_publisher(EpisodeEvent, "teleop/episode_event", 10)
        self._input_pub = (
            self.create_publisher(OperatorInput, "teleop/operator_input", 10) if self.hardware else None
        )
        self.create_subscription(PoseStamped, "ee_pose", self._on_pose, 10)
        self.create_subscription(GripperState, "gripper/state", self._on_gripper, 10)
        self.create_subscription(ArmCommand, "policy/robot_command", self._on_policy, 10)
        self.create_subscription(Bool, "safety/estop_active", self._on_estop, LATCHED)
        if self.topic_device is not None:
            self.create_subscription(OperatorInput, "teleop/operator_input", self._on_operator_input, 10)
        self.create_timer(self.period, self._tick)
        described = {
            "keyboard": KEYBOARD_HELP,
            "topic": f"OperatorInput on {self.resolve_topic_name('teleop/operator_input')}",
        }.get(self.config.device, self.device.description)
        self.get_logger().info(
            f"teleop: device {self.config.device} ({described}); {self.config.rate:g} Hz, up to "
            f"{self.config.max_linear_speed:g} m/s and {self.config.max_angular_speed:g} rad/s, commands in "
            f"'{self.limits.base_frame}', policy commands from "
            f"{self.resolve_topic_name('policy/robot_command')} pass through while the operator is idle"
        )

    def now(self) -> float:
        """The node's clock (sim time under use_sim_time), in s."""
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs -----------------------------------------------------------------------------------
    def _on_pose(self, msg: PoseStamped) -> None:
        self._measured = pose_from_msg(msg.pose)

    def _on_gripper(self, msg: GripperState) -> None:
        self._gripper_width = float(msg.width)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data and not self._estop:
            self.get_logger().warning("e-stop active: teleop commands nothing until it is reset")
            self.integrator.reset()
        elif not msg.data and self._estop:
            self.get_logger().info("e-stop reset: teleop resumes from where the arm is")
        self._estop = bool(msg.data)

    def _on_operator_input(self, msg: OperatorInput) -> None:
        try:
            sample = sample_from_msg(msg)
        except ValueError as exc:
            self.get_logger().error(
                f"ignored OperatorInput from '{msg.device}': {exc}", throttle_duration_sec=5.0
            )
            return
        if self.topic_device is not None:
            self.topic_device.push(sample)

    def _on_policy(self, msg: ArmCommand) -> None:
        """Forward a policy command unchanged (its own stamp and source) unless the operator drives."""
        if self.arbiter.on_policy_command(self.now()) and not self._estop:
            self._command_pub.publish(msg)
            self._commanded_width = float(msg.gripper_width)

    # -- loop -------------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.now()
        dt = 0.0 if self._last_tick is None else min(max(now - self._last_tick, 0.0), 2.0 * self.period)
        self._last_tick = now
        sample = self.device.read()
        if self._input_pub is not None:
            self._input_pub.publish(sample_to_msg(sample, now))
        if sample.event is not EpisodeEventKind.NONE:
            self._publish_event(sample, now)
        transition = self.arbiter.on_sample(sample, now)
        if transition is not None:
            self._on_transition(transition, now)
        if not self.arbiter.operator_active or self._estop:
            return
        if self._measured is None:
            self.get_logger().warning(
                f"operator active but no {self.resolve_topic_name('ee_pose')} yet: is a driver running?",
                throttle_duration_sec=5.0,
            )
            return
        target = self.integrator.update(sample, dt, self._measured)
        width = self.integrator.gripper_width
        self._command_pub.publish(
            command_to_msg(target, width, now, self.limits.base_frame, f"teleop/{sample.device}")
        )
        self._commanded_width = width

    def _on_transition(self, transition: Transition, now: float) -> None:
        log = self.get_logger()
        if transition.active:
            start_width = self._commanded_width if self._commanded_width is not None else self._gripper_width
            self.integrator.reset(start_width)
            what = "takes over from the policy" if transition.intervention else "takes control"
            log.info(f"operator ({transition.device}) {what}: {transition.reason}")
        else:
            what = "hands back to the policy" if transition.intervention else "released control"
            log.info(f"operator ({transition.device}) {what}: {transition.reason}")
        if transition.intervention:
            msg = Intervention(active=transition.active, device=transition.device, reason=transition.reason)
            msg.header.stamp = seconds_to_stamp(now)
            self._intervention_pub.publish(msg)

    def _publish_event(self, sample: OperatorSample, now: float) -> None:
        msg = EpisodeEvent(kind=int(sample.event), source=f"teleop/{sample.device}")
        msg.header.stamp = seconds_to_stamp(now)
        self._event_pub.publish(msg)
        self.get_logger().info(f"episode event from {sample.device}: {sample.event.name}")

    def shutdown(self) -> None:
        """Release the device (restores the terminal for the keyboard)."""
        self.device.close()


def main(args: list[str] | None = None) -> None:
    """Entry point: ``teleop --ros-args -p teleop.device:=spacemouse``."""
    sys.exit(run_node(TeleopNode, shutdown=lambda node: node.shutdown(), args=args))


if __name__ == "__main__":
    main()
