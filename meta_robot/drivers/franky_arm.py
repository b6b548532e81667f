"""The real Franka arm through franky (libfranka), behind the ArmBackend contract.

franky runs the 1 kHz control loop in its own real-time thread; this backend only streams Cartesian
targets that the safety layer has already checked and rate-limited. Each target is an asynchronous
``CartesianMotion`` that preempts the previous one, and franky's own trajectory generation (scaled
by ``relative_dynamics_factor``) keeps the motion within the arm's limits. Poses are of the end
effector frame O_T_EE, which is the Franka Hand's TCP when the hand is configured in Desk.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from meta_robot.core.arm import GRIPPER_MAX_WIDTH, ArmBackend, ArmError, ArmState, ArmTarget, Pose

logger = logging.getLogger(__name__)

REALTIME_CONFIGS = ("enforce", "ignore")
GRIPPER_DEADBAND = 0.002  # m: width changes smaller than this do not restart the gripper
GRIPPER_POLL_RATE = 10.0  # Hz: gripper width/grasp readings
DISCONNECT_TIMEOUT = 5.0  # s to let the stopping motion and a gripper operation finish


@dataclass(frozen=True)
class FrankyArmConfig:
    """How to reach and drive the arm. Units: m, m/s, N, Nm."""

    robot_ip: str = field(default="", metadata={"doc": "FCI address of the Franka controller"})
    realtime_config: str = field(
        default="enforce",
        metadata={"doc": "'enforce' (real arm, PREEMPT_RT kernel) or 'ignore' (simulators only)"},
    )
    relative_dynamics_factor: float = field(
        default=0.15, metadata={"doc": "(0, 1]: fraction of the arm's velocity/acceleration/jerk limits"}
    )
    torque_threshold: float = field(
        default=20.0, metadata={"doc": "Nm, joint torque that triggers a collision reflex"}
    )
    force_threshold: float = field(
        default=30.0, metadata={"doc": "N, Cartesian force that triggers a collision reflex"}
    )
    retarget_rate: float = field(
        default=10.0, metadata={"doc": "Hz, at most this many new Cartesian targets per second to franky"}
    )
    gripper_speed: float = field(default=0.08, metadata={"doc": "m/s, finger speed"})
    gripper_force: float = field(default=40.0, metadata={"doc": "N, grasping force"})

    def __post_init__(self) -> None:
        if not self.robot_ip:
            raise ValueError("robot_ip is required (the FCI address, e.g. 172.16.0.2)")
        if self.realtime_config not in REALTIME_CONFIGS:
            raise ValueError(
                f"realtime_config must be one of {REALTIME_CONFIGS}, got '{self.realtime_config}'"
            )
        if not 0.0 < self.relative_dynamics_factor <= 1.0:
            raise ValueError(
                f"relative_dynamics_factor must be in (0, 1], got {self.relative_dynamics_factor}"
            )
        for name in (
            "torque_threshold",
            "force_threshold",
            "retarget_rate",
            "gripper_speed",
            "gripper_force",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")


class FrankyArm(ArmBackend):
    """A Franka arm + Franka Hand driven with franky."""

    def __init__(self, config: FrankyArmConfig) -> None:
        self.config = config
        self._robot = None
        self._gripper = None
        self._gripper_target: float | None = None
        self._gripper_future = None
        self._gripper_width = GRIPPER_MAX_WIDTH
        self._gripper_grasped = False
        self._last_retarget = -math.inf
        self._last_gripper_poll = -math.inf

    # -- lifecycle ----------------------------------------------------------------------------------
    def connect(self) -> None:
        """Connect to the arm and hand; raise ArmError naming the address on failure."""
        import franky

        rt = {"enforce": franky.RealtimeConfig.Enforce, "ignore": franky.RealtimeConfig.Ignore}
        cfg = self.config
        try:
            robot = franky.Robot(
                cfg.robot_ip,
                realtime_config=rt[cfg.realtime_config],
                default_torque_threshold=cfg.torque_threshold,
                default_force_threshold=cfg.force_threshold,
            )
            robot.relative_dynamics_factor = cfg.relative_dynamics_factor
            if robot.has_errors:
                logger.warning("the arm reports errors at connect; recovering")
                robot.recover_from_errors()
            gripper = franky.Gripper(cfg.robot_ip)
        except Exception as exc:  # franky raises several libfranka exception types
            raise ArmError(
                f"cannot connect to the Franka at {cfg.robot_ip} (realtime_config={cfg.realtime_config}): "
                f"{exc}. Check the address, that FCI is enabled in Desk and the brakes are open."
            ) from exc
        self._robot, self._gripper = robot, gripper
        self._gripper_width = float(gripper.width)
        logger.info("connected to the Franka at %s", cfg.robot_ip)

    def disconnect(self) -> None:
        """Stop any motion and release the connection (idempotent).

        The motion thread and any gripper operation are joined before the objects are dropped:
        destroying a franky Robot while its motion thread still runs can deadlock on the GIL.
        """
        if self._robot is None:
            return
        try:
            self.hold()
            self._join_stopped_motion()
            if self._gripper_future is not None:
                self._gripper_future.wait(DISCONNECT_TIMEOUT)
        finally:
            self._gripper_future = None
            self._robot = None
            self._gripper = None

    def _join_stopped_motion(self) -> None:
        """Wait until the stopped motion has ended; its 'preempted' outcome is the expected one."""
        try:
            if not self._arm().join_motion(timeout=DISCONNECT_TIMEOUT):
                logger.warning("the arm's motion did not end within %.0f s of the stop", DISCONNECT_TIMEOUT)
        except Exception as exc:  # libfranka reports the stop as a preempted motion
            logger.debug("stopped motion ended with: %s", exc)

    def _arm(self):
        if self._robot is None:
            raise ArmError("the arm is not connected: call connect() first")
        return self._robot

    # -- state --------------------------------------------------------------------------------------
    def read_state(self) -> ArmState:
        """The latest state from franky's control loop (no blocking round trip)."""
        robot = self._arm()
        state = robot.state  # one snapshot of the control loop's state: pose, joints, forces
        ee = state.O_T_EE
        velocity = state.O_dP_EE_est or state.O_dP_EE_c
        self._poll_gripper()
        width = self._gripper_width
        return ArmState(
            stamp=float(state.time.to_sec()),
            joint_positions=np.asarray(state.q, dtype=float),
            joint_velocities=np.asarray(state.dq, dtype=float),
            tcp_pose=Pose(np.asarray(ee.translation, dtype=float), np.asarray(ee.quaternion, dtype=float)),
            tcp_linear_velocity=np.asarray(velocity.linear, dtype=float),
            gripper_width=width,
            gripper_grasped=self._gripper_grasped,
            external_force=np.asarray(state.O_F_ext_hat_K, dtype=float)[:3],
            finger_positions=np.array([width / 2.0, width / 2.0]),
        )

    def _poll_gripper(self) -> None:
        """Refresh the gripper reading at GRIPPER_POLL_RATE when no gripper command is in flight
        (each reading is a network round trip to the hand, and blocks while it moves)."""
        if self._gripper is None:
            return
        now = time.monotonic()
        if now - self._last_gripper_poll < 1.0 / GRIPPER_POLL_RATE:
            return
        self._last_gripper_poll = now
        future = self._gripper_future
        if future is not None and not future.wait(0):
            return
        self._gripper_future = None
        gripper_state = self._gripper.state
        self._gripper_width = float(gripper_state.width)
        self._gripper_grasped = bool(gripper_state.is_grasped)

    # -- commands -----------------------------------------------------------------------------------
    def command(self, target: ArmTarget) -> None:
        """Stream one safe target: it preempts the motion in progress.

        Targets arrive at the driver's control rate; franky re-plans a jerk-limited trajectory for each
        new one, so they are forwarded at ``retarget_rate`` at most (the safety layer's setpoint moves
        smoothly, and franky interpolates between the forwarded ones).
        """
        import franky

        self._command_gripper(float(target.gripper_width))
        now = time.monotonic()
        if now - self._last_retarget < 1.0 / self.config.retarget_rate:
            return
        self._last_retarget = now
        robot = self._arm()
        pose = franky.Affine(
            [float(v) for v in target.pose.position], [float(v) for v in target.pose.orientation]
        )
        motion = franky.CartesianMotion(pose, franky.ReferenceType.Absolute)
        try:
            robot.move(motion, asynchronous=True)
        except Exception as first:
            # A motion stopped by hold() reports itself as preempted on the next move, and a
            # replacement can fail to plan from the state the preempted one left: both are retried
            # once. Anything else (a reflex) needs safety/recover.
            if "preempted" not in str(first) and "planner" not in str(first):
                raise ArmError(f"the arm refused the motion ({first}); call safety/recover") from first
            try:
                robot.move(motion, asynchronous=True)
            except Exception as exc:
                raise ArmError(f"the arm refused the motion ({exc}); call safety/recover") from exc

    def _command_gripper(self, width: float) -> None:
        if self._gripper is None:
            return
        if self._gripper_target is not None and abs(width - self._gripper_target) < GRIPPER_DEADBAND:
            return
        if self._gripper_future is not None and not self._gripper_future.wait(0):
            return  # let the running gripper motion finish; the new width is sent next tick
        self._gripper_target = width
        cfg = self.config
        if width < self._gripper_width - GRIPPER_DEADBAND:
            # Closing: grasp with force so an object of unknown width is held, not squeezed to width.
            self._gripper_future = self._gripper.grasp_async(
                width, cfg.gripper_speed, cfg.gripper_force, epsilon_inner=0.08, epsilon_outer=0.08
            )
        else:
            self._gripper_future = self._gripper.move_async(width, cfg.gripper_speed)

    def hold(self) -> None:
        """Stop the arm where it is (franky decelerates within its limits)."""
        if self._robot is None:
            return
        self._last_retarget = -math.inf
        try:
            self._robot.stop()
        except Exception as exc:  # a stop that fails leaves libfranka's own reflexes in charge
            logger.error("stopping the arm failed: %s", exc)

    def recover(self) -> None:
        """Clear a reflex (collision, joint limit) so that motions are accepted again."""
        robot = self._arm()
        try:
            robot.recover_from_errors()
        except Exception as exc:
            raise ArmError(f"automatic error recovery failed: {exc}") from exc
        logger.info("recovered from errors")
