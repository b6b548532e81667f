"""The ROS face of an arm driver, shared by the MuJoCo sim bridge and the franky driver.

It owns the one :class:`SafetyLayer` in front of the backend, so no command reaches an arm without
passing it, and both drivers publish and serve exactly the same names:

* subscribes ``robot_command`` (meta_robot_interfaces/ArmCommand)
* publishes ``joint_states``, ``ee_pose`` (TCP in the base frame), ``gripper/state``,
  ``diagnostics`` (accepted / refused / held counts), ``safety/estop_active`` (latched Bool),
  ``safety/refusals`` (one String per refused command, with the reason)
* serves ``safety/estop``, ``safety/reset_estop`` and ``safety/recover`` (std_srvs/Trigger)

The driver node calls :meth:`DriverInterface.tick` at its control rate.
"""

from __future__ import annotations

from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import ArmCommand, GripperState
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from meta_robot.core.arm import ArmBackend, ArmError, ArmState
from meta_robot.ros.arm_messages import (
    command_from_msg,
    gripper_state_msg,
    joint_state_msg,
    seconds_to_stamp,
    tcp_pose_msg,
)
from meta_robot.ros.parameters import declare_config
from meta_robot.safety.guarded_arm import GuardedArm
from meta_robot.safety.layer import CommandRejected, SafetyLayer
from meta_robot.safety.limits import SafetyLimits

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
ESTOP_SERVICE = "safety/estop"


class DriverConflictError(RuntimeError):
    """Another driver already serves this namespace: two drivers must never command one arm."""


def ensure_sole_driver(node: Node, wait: float = 3.0) -> None:
    """Refuse to start if another driver's e-stop service is visible in this namespace.

    DDS discovery on loopback usually answers in well under a second; ``wait`` leaves room for a
    loaded machine. It is a start-up check: it cannot see a driver started later than this one.
    """
    client = node.create_client(Trigger, ESTOP_SERVICE)
    try:
        if client.wait_for_service(timeout_sec=wait):
            ns = node.get_namespace().rstrip("/")
            owners = [
                f"{n_ns.rstrip('/')}/{name}"
                for name, n_ns in node.get_node_names_and_namespaces()
                if n_ns == node.get_namespace() and name != node.get_name()
            ]
            raise DriverConflictError(
                f"another driver already serves {ns}/{ESTOP_SERVICE} (nodes in this namespace: "
                f"{owners}); stop it or start this one in another namespace (-r __ns:=/robot2)"
            )
    finally:
        node.destroy_client(client)


class DriverInterface:
    """Wires an ArmBackend, behind a SafetyLayer, into topics and services of ``node``."""

    def __init__(self, node: Node, backend: ArmBackend, now: Callable[[], float]) -> None:
        self.node = node
        self.backend = backend
        self.now = now
        self.limits = declare_config(node, "safety", SafetyLimits)
        self.safety = SafetyLayer(self.limits)
        self.arm = GuardedArm(backend, self.safety)
        self.state: ArmState | None = None
        log = node.get_logger()
        self._log = log
        self._joint_pub = node.create_publisher(JointState, "joint_states", 10)
        self._pose_pub = node.create_publisher(PoseStamped, "ee_pose", 10)
        self._gripper_pub = node.create_publisher(GripperState, "gripper/state", 10)
        self._diag_pub = node.create_publisher(DiagnosticArray, "diagnostics", 10)
        self._estop_pub = node.create_publisher(Bool, "safety/estop_active", LATCHED)
        self._refusal_pub = node.create_publisher(String, "safety/refusals", 10)
        node.create_subscription(ArmCommand, "robot_command", self._on_command, 10)
        node.create_service(Trigger, ESTOP_SERVICE, self._on_estop)
        node.create_service(Trigger, "safety/reset_estop", self._on_reset_estop)
        node.create_service(Trigger, "safety/recover", self._on_recover)
        node.create_timer(1.0, self.publish_diagnostics)
        self._publish_estop()
        lo, hi = self.limits.workspace_min, self.limits.workspace_max
        log.info(
            f"safety layer: workspace {list(lo)}..{list(hi)} m, {self.limits.max_linear_speed} m/s, "
            f"watchdog {self.limits.watchdog_timeout * 1e3:.0f} ms, frame '{self.limits.base_frame}'"
        )

    # -- control loop -----------------------------------------------------------------------------
    def tick(self, dt: float) -> ArmState:
        """Read the arm, run the safety layer, command or hold the backend, publish the state."""
        now = self.now()
        state = self.arm.tick(now, dt)
        self.state = state
        stamp = seconds_to_stamp(now)
        self._joint_pub.publish(joint_state_msg(state, stamp))
        self._pose_pub.publish(tcp_pose_msg(state, stamp, self.limits.base_frame))
        self._gripper_pub.publish(gripper_state_msg(state, stamp))
        return state

    # -- callbacks --------------------------------------------------------------------------------
    def _on_command(self, msg: ArmCommand) -> None:
        try:
            self.safety.submit(command_from_msg(msg), self.now())
        except CommandRejected as rejected:
            text = f"refused command from '{msg.source or 'unknown'}': {rejected}"
            self._log.warning(text)
            self._refusal_pub.publish(String(data=text))

    def _on_estop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.safety.trigger_estop()
        self.arm.hold()
        self._publish_estop()
        response.success, response.message = True, "e-stop latched; call safety/reset_estop to release"
        return response

    def _on_reset_estop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.safety.reset_estop()
        self._publish_estop()
        response.success, response.message = True, "e-stop released; the arm moves on fresh commands"
        return response

    def _on_recover(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            self.backend.recover()
        except ArmError as exc:
            response.success, response.message = False, str(exc)
            self._log.error(f"recovery failed: {exc}")
            return response
        response.success, response.message = True, "recovered"
        self._log.info("arm recovered from its fault")
        return response

    def _publish_estop(self) -> None:
        self._estop_pub.publish(Bool(data=self.safety.estop_active))

    def publish_diagnostics(self) -> None:
        """Counts of accepted, refused and held commands, by reason, on ``diagnostics``."""
        safety = self.safety
        status = DiagnosticStatus()
        status.name = f"{self.node.get_fully_qualified_name()}: safety"
        status.hardware_id = type(self.backend).__name__
        if safety.estop_active:
            status.level, status.message = DiagnosticStatus.ERROR, "e-stop latched"
        elif safety.rejections:
            status.level, status.message = DiagnosticStatus.WARN, "commands refused"
        else:
            status.level, status.message = DiagnosticStatus.OK, "ok"
        values = {"accepted": safety.accepted, "estop_active": safety.estop_active}
        values.update({f"refused.{k}": v for k, v in sorted(safety.rejections.items())})
        values.update({f"held.{k}": v for k, v in sorted(safety.holds.items())})
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray()
        msg.header.stamp = seconds_to_stamp(self.now())
        msg.status = [status]
        self._diag_pub.publish(msg)
