"""The safety layer between every commander (policy, teleop, demo) and every driver.

Two halves, both pure Python so they are tested without ROS and shared by the sim bridge and the
franky driver:

* :meth:`SafetyLayer.submit` checks one incoming command (e-stop, finite numbers, frame, freshness,
  unit quaternion, workspace box, step size, gripper range) and either accepts it as the new goal or
  raises :class:`CommandRejected` with the reason.
* :meth:`SafetyLayer.update` runs every control tick: it enforces the watchdog and the contact-force
  limit and moves the driver's setpoint toward the goal no faster than the speed limits. Whatever it
  returns is the only thing a driver is ever told.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from meta_robot.core.arm import ArmState, ArmTarget, Pose
from meta_robot.core.geometry import quat_angle, quat_multiply, quat_normalize, quat_slerp
from meta_robot.safety.limits import SafetyLimits

logger = logging.getLogger(__name__)

QUATERNION_NORM_TOLERANCE = 1e-3  # |q| must be within this of 1; anything else is malformed


class CommandMode(enum.IntEnum):
    """How a command's pose is meant (values match ArmCommand.msg)."""

    ABSOLUTE = 0
    DELTA = 1


class Reason(str, enum.Enum):
    """Why a command was refused or the arm is held; names appear in logs and diagnostics."""

    ESTOP = "estop_latched"
    NON_FINITE = "non_finite"
    WRONG_FRAME = "wrong_frame"
    STALE = "stale"
    FROM_FUTURE = "stamped_in_future"
    BAD_MODE = "bad_mode"
    BAD_QUATERNION = "bad_quaternion"
    OUT_OF_WORKSPACE = "out_of_workspace"
    STEP_TOO_LARGE = "step_too_large"
    GRIPPER_OUT_OF_RANGE = "gripper_out_of_range"
    NO_STATE = "no_state_yet"
    IDLE = "no_command"
    WATCHDOG = "watchdog"
    FORCE_LIMIT = "force_limit"


@dataclass(frozen=True)
class Command:
    """A commander's request, as plain numbers (the ROS message is converted to this)."""

    stamp: float  # s
    frame_id: str
    mode: int
    position: np.ndarray  # m, target or offset
    orientation: np.ndarray  # (x, y, z, w), target or rotation offset
    gripper_width: float  # m
    source: str = ""


class CommandRejected(ValueError):
    """A command the safety layer refused; ``reason`` is machine-readable, the message is for people."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SafetyOutput:
    """What the driver must do this tick: track ``target``, or hold still when it is None."""

    target: ArmTarget | None
    hold_reason: Reason | None = None


class SafetyLayer:
    """Checks commands, rate-limits the setpoint, and holds the arm on watchdog, force or e-stop."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self.rejections: Counter[str] = Counter()
        self.holds: Counter[str] = Counter()
        self.accepted = 0
        self._lo = np.asarray(limits.workspace_min)
        self._hi = np.asarray(limits.workspace_max)
        self._estop = False
        self._goal: ArmTarget | None = None
        self._setpoint: Pose | None = None
        self._last_command_time: float | None = None
        self._state: ArmState | None = None
        self._hold_reason: Reason | None = None

    # -- e-stop -----------------------------------------------------------------------------------
    @property
    def estop_active(self) -> bool:
        """Whether the e-stop is latched."""
        return self._estop

    def trigger_estop(self) -> None:
        """Latch the e-stop: hold the arm and refuse every command until :meth:`reset_estop`."""
        if not self._estop:
            logger.error("E-STOP latched: arm held, all commands refused until reset")
        self._estop = True
        self.clear_goal()

    def reset_estop(self) -> None:
        """Release the e-stop; the arm stays held until a fresh command arrives."""
        if self._estop:
            logger.warning("E-stop reset: fresh commands will be accepted again")
        self._estop = False
        self.clear_goal()

    # -- commands ---------------------------------------------------------------------------------
    def submit(self, command: Command, now: float) -> ArmTarget:
        """Accept ``command`` as the new goal, or raise :class:`CommandRejected` (and count it)."""
        try:
            goal = self._check(command, now)
        except CommandRejected as rejected:
            self.rejections[rejected.reason.value] += 1
            raise
        self._goal = goal
        self._last_command_time = now
        self.accepted += 1
        return goal

    def _check(self, cmd: Command, now: float) -> ArmTarget:
        lim = self.limits
        if self._estop:
            raise CommandRejected(Reason.ESTOP, "the e-stop is latched; reset it first")
        numbers = np.concatenate(
            [[cmd.stamp, cmd.gripper_width], np.ravel(cmd.position), np.ravel(cmd.orientation)]
        )
        if numbers.shape != (9,) or not np.all(np.isfinite(numbers)):
            raise CommandRejected(Reason.NON_FINITE, f"command holds NaN/inf or wrong sizes: {numbers}")
        if cmd.frame_id != lim.base_frame:
            raise CommandRejected(
                Reason.WRONG_FRAME, f"frame '{cmd.frame_id}' is not the base frame '{lim.base_frame}'"
            )
        age = now - cmd.stamp
        if age > lim.max_command_age:
            raise CommandRejected(Reason.STALE, f"command is {age:.3f} s old (limit {lim.max_command_age} s)")
        if -age > lim.max_clock_skew:
            raise CommandRejected(
                Reason.FROM_FUTURE, f"command is stamped {-age:.3f} s in the future; check clocks"
            )
        if cmd.mode not in (CommandMode.ABSOLUTE, CommandMode.DELTA):
            raise CommandRejected(Reason.BAD_MODE, f"unknown mode {cmd.mode}")
        quat = np.asarray(cmd.orientation, dtype=float)
        if abs(np.linalg.norm(quat) - 1.0) > QUATERNION_NORM_TOLERANCE:
            raise CommandRejected(
                Reason.BAD_QUATERNION, f"orientation {quat} is not a unit quaternion (x, y, z, w)"
            )
        if not lim.gripper_min_width <= cmd.gripper_width <= lim.gripper_max_width:
            raise CommandRejected(
                Reason.GRIPPER_OUT_OF_RANGE,
                f"gripper width {cmd.gripper_width} m outside "
                f"[{lim.gripper_min_width}, {lim.gripper_max_width}]",
            )
        reference = self._reference_pose()
        if reference is None:
            raise CommandRejected(Reason.NO_STATE, "no arm state received yet")
        if cmd.mode == CommandMode.DELTA:
            base = self._goal.pose if self._goal is not None else reference
            position = base.position + np.asarray(cmd.position, dtype=float)
            orientation = quat_normalize(quat_multiply(quat, base.orientation))
        else:
            position = np.asarray(cmd.position, dtype=float)
            orientation = quat_normalize(quat)
        if not lim.contains(position):
            raise CommandRejected(
                Reason.OUT_OF_WORKSPACE,
                f"target {np.round(position, 3).tolist()} outside the workspace box "
                f"{list(lim.workspace_min)}..{list(lim.workspace_max)}",
            )
        step = float(np.linalg.norm(position - reference.position))
        if step > lim.max_step:
            raise CommandRejected(
                Reason.STEP_TOO_LARGE,
                f"target is {step:.3f} m from the current setpoint (limit {lim.max_step} m); "
                "send intermediate targets",
            )
        turn = quat_angle(orientation, reference.orientation)
        if turn > lim.max_rotation_step:
            raise CommandRejected(
                Reason.STEP_TOO_LARGE,
                f"target turns {turn:.3f} rad from the current setpoint (limit {lim.max_rotation_step})",
            )
        return ArmTarget(Pose(position, orientation), float(cmd.gripper_width))

    def _reference_pose(self) -> Pose | None:
        """Where the arm is being told to be: the setpoint, else the measured pose."""
        if self._setpoint is not None:
            return self._setpoint
        return self._state.tcp_pose if self._state is not None else None

    # -- control tick -----------------------------------------------------------------------------
    def update(self, state: ArmState, now: float, dt: float) -> SafetyOutput:
        """One control tick: decide what the driver tracks (or that it holds)."""
        self._state = state
        reason = self._hold_condition(state, now)
        if reason is not None:
            if reason is not self._hold_reason:
                self.holds[reason.value] += 1
                if reason is not Reason.IDLE:
                    logger.warning("holding the arm: %s", reason.value)
            self._hold_reason = reason
            self.clear_goal()
            return SafetyOutput(None, reason)
        self._hold_reason = None
        goal = self._goal
        if goal is None:  # unreachable: _hold_condition returns IDLE without a goal
            return SafetyOutput(None, Reason.IDLE)
        if self._setpoint is None:
            self._setpoint = state.tcp_pose
        self._setpoint = self._limited_step(self._setpoint, goal.pose, dt)
        return SafetyOutput(ArmTarget(self._setpoint, goal.gripper_width))

    def _hold_condition(self, state: ArmState, now: float) -> Reason | None:
        if self._estop:
            return Reason.ESTOP
        force = float(np.linalg.norm(state.external_force))
        if not np.isfinite(force) or force > self.limits.max_contact_force:
            if self._goal is not None:
                logger.error(
                    "contact force %.1f N over the %.1f N limit", force, self.limits.max_contact_force
                )
            return Reason.FORCE_LIMIT
        if self._goal is None or self._last_command_time is None:
            return Reason.IDLE
        if now - self._last_command_time > self.limits.watchdog_timeout:
            return Reason.WATCHDOG
        return None

    def _limited_step(self, current: Pose, goal: Pose, dt: float) -> Pose:
        """Move ``current`` toward ``goal`` by at most the speed limits times ``dt``."""
        dt = max(0.0, float(dt))
        delta = goal.position - current.position
        distance = float(np.linalg.norm(delta))
        max_move = self.limits.max_linear_speed * dt
        position = goal.position if distance <= max_move else current.position + delta * (max_move / distance)
        position = np.clip(position, self._lo, self._hi)
        angle = quat_angle(current.orientation, goal.orientation)
        max_turn = self.limits.max_angular_speed * dt
        if angle <= max_turn or angle < 1e-9:
            orientation = quat_normalize(goal.orientation)
        else:
            orientation = quat_slerp(current.orientation, goal.orientation, max_turn / angle)
        return Pose(position, orientation)

    def clear_goal(self) -> None:
        """Forget the goal and setpoint: the arm holds until a fresh command, from where it is."""
        self._goal = None
        self._setpoint = None
        self._last_command_time = None

    @property
    def goal(self) -> ArmTarget | None:
        """The accepted goal being tracked, if any."""
        return self._goal
