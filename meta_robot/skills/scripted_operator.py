"""A scripted operator for the sim: follows the waypoints of a skill's controller
(:mod:`meta_robot.skills.controllers`, one per primitive) from privileged state.

It plays the part of a person at a SpaceMouse: each control tick it looks at the privileged world
state and answers with a twist (m/s, rad/s in the base frame) and a gripper action, which the node
sends to the teleop node exactly as a device would. Approach heights, speeds, grasp offsets and
yaws are drawn per episode from a seeded generator, so the demonstrations are diverse but
reproducible. Whether an episode succeeded is read off the registry's post-conditions, never
assumed from the script having finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from meta_robot.core.geometry import quat_conjugate, quat_multiply, quat_to_rotvec
from meta_robot.skills.controllers import CONTROLLERS
from meta_robot.skills.controllers.base import (
    CLOSE,
    OPEN,
    OperatorStyle,
    Phase,
    Waypoint,
    clip_norm,
    hand_quat,
    yaw_of,
)
from meta_robot.skills.registry import GroundSkill
from meta_robot.skills.world import Grounding, WorldState
from meta_robot.teleop.devices import Frame, GripperAction, OperatorSample

__all__ = ["EpisodeClock", "OperatorAction", "OperatorStyle", "ScriptedOperator", "to_sample", "yaw_of"]

STALL_TIME = 1.5  # s without getting closer to a waypoint ...
STALL_TOLERANCE = 0.015  # m ... this near it counts as reached


@dataclass(frozen=True)
class OperatorAction:
    """What the operator does this tick: base-frame twist and an optional gripper action."""

    linear: np.ndarray  # m/s
    angular: np.ndarray  # rad/s
    gripper: str | None = None  # "open", "close" or None (keep)


GRIPPER_ACTIONS = {None: GripperAction.KEEP, OPEN: GripperAction.OPEN, CLOSE: GripperAction.CLOSE}


def to_sample(
    action: OperatorAction, max_linear_speed: float, max_angular_speed: float, deadman: bool = True
) -> OperatorSample:
    """The device sample a SpaceMouse would give for ``action``: axes normalised by the teleop
    node's speed limits, at speed scale 1, in the base frame."""
    twist = np.concatenate([action.linear / max_linear_speed, action.angular / max_angular_speed])
    return OperatorSample(
        device="scripted",
        deadman=deadman,
        twist=tuple(float(v) for v in np.clip(twist, -1.0, 1.0)),
        frame=Frame.BASE,
        gripper=GRIPPER_ACTIONS[action.gripper],
        speed_scale=1.0,
    )


class ScriptedOperator:
    """Runs one skill as a sequence of waypoints computed from the world when each one starts."""

    def __init__(
        self,
        skill: GroundSkill,
        grounding: Grounding,
        rng: np.random.Generator,
        max_linear_speed: float = 0.25,
        max_angular_speed: float = 1.0,
    ) -> None:
        self.skill = skill
        self.grounding = grounding
        self.style = OperatorStyle.sample(rng)
        self.max_linear_speed = max_linear_speed
        self.max_angular_speed = max_angular_speed
        self.geometry = grounding.geometry
        if skill.name not in CONTROLLERS:
            raise ValueError(f"the scripted operator has no controller for skill '{skill.name}'")
        self._controller = CONTROLLERS[skill.name]
        self._phases: list[Phase] = self._controller(self)
        self._index = -1
        self._current: Waypoint | None = None
        self._reached_at: float | None = None
        self._grasp_lost_at: float | None = None
        self.restarts = 0
        # Assert the hand's state from the first tick: a skill that starts holding something must not
        # let the teleop node's remembered width open the fingers, and one that starts empty-handed
        # must not approach with fingers a previous skill left closed.
        holding = any(lit.predicate == "holding" and not lit.negated for lit in skill.preconditions)
        empty = any(lit.predicate == "hand_empty" and not lit.negated for lit in skill.preconditions)
        self._gripper_sent: str | None = CLOSE if holding else OPEN if empty else None
        self._hand_yaw = 0.0  # the TCP's yaw at the last tick: where a held object sits in the hand
        self.finished = False

    @property
    def hand_yaw(self) -> float:
        """The TCP's yaw at the last tick: where a held object sits in the hand."""
        return self._hand_yaw

    @property
    def current(self) -> Waypoint | None:
        """The waypoint being followed."""
        return self._current

    # --- control loop ---------------------------------------------------------------------------
    def act(self, world: WorldState, tcp_orientation: np.ndarray, now: float) -> OperatorAction:
        """The twist and gripper action for this tick; sets ``finished`` after the last waypoint."""
        self._hand_yaw = yaw_of(tcp_orientation)
        if self._current is None:
            self._advance(world)
        if self.finished or self._current is None:
            return OperatorAction(np.zeros(3), np.zeros(3))
        wp = self._current
        target = wp.track(world) if wp.track is not None else wp.position
        error = target - world.tcp_position
        rotation_error = quat_to_rotvec(quat_multiply(hand_quat(wp.yaw), quat_conjugate(tcp_orientation)))
        distance = float(np.linalg.norm(error)) + 0.05 * float(np.linalg.norm(rotation_error))
        if distance < self._best_distance - 0.001:  # still closing in
            self._best_distance, self._best_time = distance, now
        # Like a person, accept "nearly there and no longer getting closer" (a controller's steady-state
        # error under load, a finger resting on the desk) instead of waiting out the skill's timeout.
        stalled = now - self._best_time > STALL_TIME and float(np.linalg.norm(error)) < STALL_TOLERANCE
        reached = (
            (float(np.linalg.norm(error)) < wp.tolerance and float(np.linalg.norm(rotation_error)) < 0.05)
            or (wp.done_when is not None and wp.done_when(world))
            or (stalled and wp.tolerance > 0.0 and wp.stall_ok)
        )
        gripper = None
        if reached and self._reached_at is None:
            self._reached_at = now
        if self._reached_at is not None:
            if wp.gripper is not None and self._gripper_sent != wp.gripper:
                gripper = wp.gripper
                self._gripper_sent = wp.gripper
            if now - self._reached_at >= wp.dwell:
                self._advance(world)
        linear = clip_norm(3.0 * error, min(wp.speed, self.max_linear_speed))
        angular = clip_norm(3.0 * rotation_error, self.max_angular_speed * 0.6)
        if gripper is None and self._gripper_sent is not None:
            gripper = self._gripper_sent  # keep asserting the last gripper action
        return OperatorAction(linear, angular, gripper)

    def succeeded(self, world: WorldState) -> bool:
        """The skill's post-conditions, from privileged state."""
        return self.grounding.succeeded(world, self.skill)

    def resync(self, world: WorldState, now: float, grace: float = 0.3) -> bool:
        """Re-derive where the skill stands when someone else drives the arm (DAgger's learner): a
        phase that needs a grasp with nothing held for ``grace`` s, or a finished script whose
        post-conditions do not hold, starts the skill again from the world as it is (its phases skip
        what is already done, e.g. the rise when the hand is high). True if it restarted."""
        lost = self._current is not None and self._current.needs_grasp and not world.gripper_grasped
        if not lost:
            self._grasp_lost_at = None
        elif self._grasp_lost_at is None:
            self._grasp_lost_at = now
        if (lost and now - self._grasp_lost_at >= grace) or (self.finished and not self.succeeded(world)):
            self.restart()
            return True
        return False

    def restart(self) -> None:
        """Plan the skill afresh: the next :meth:`act` computes its first phase from the world."""
        self._phases = self._controller(self)
        self._index = -1
        self._current = None
        self._reached_at = None
        self._grasp_lost_at = None
        self.finished = False
        self.restarts += 1

    def _advance(self, world: WorldState) -> None:
        self._index += 1
        self._reached_at = None
        self._best_distance, self._best_time = math.inf, -math.inf
        if self._index >= len(self._phases):
            self.finished = True
            self._current = None
            return
        self._current = self._phases[self._index](world)
        if self._current is None:  # a phase with nothing to do here (e.g. a retry that is not needed)
            self._advance(world)


@dataclass
class EpisodeClock:
    """Skill timeout bookkeeping in the clock the operator runs on (sim time in sim)."""

    timeout: float
    started: float | None = None
    elapsed: float = field(default=0.0)

    def tick(self, now: float) -> bool:
        """Advance; True once the timeout has passed."""
        if self.started is None:
            self.started = now
        self.elapsed = now - self.started
        return self.elapsed > self.timeout
