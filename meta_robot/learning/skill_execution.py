"""What the policy server does between ROS messages, without ROS: assemble observations, run the
skill sessions of every robot it serves in one batched policy call, and decide how each one ends.

A session ends SUCCEEDED when the success classifier's debounced event for its skill arrives,
TIMED_OUT at the skill's timeout, PREEMPTED when cancelled or replaced, and FAILED when the policy
cannot act (bad image, non-finite action): in every case but success the caller stops the arm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from meta_robot.core.observation import state_vector
from meta_robot.learning.policy import Action, EpisodeState, Observation, Policy, PolicyError, SkillRequest


class Outcome(IntEnum):
    """ExecuteSkill.Result's outcome codes."""

    SUCCEEDED = 0
    FAILED = 1
    TIMED_OUT = 2
    PREEMPTED = 3


@dataclass
class Stamped:
    time: float  # s, on the clock the server runs on
    value: object


@dataclass
class InputBuffer:
    """The latest image of each camera and the latest proprioception of one robot.

    Images are kept as they arrived and decoded only when a step uses them (a camera at 30 Hz and a
    policy at 10 Hz: two of three frames are never decoded)."""

    cameras: tuple[str, ...]
    max_age: float = 0.5  # s; older inputs are stale and the step waits
    latest: dict[str, Stamped] = field(default_factory=dict)

    def put(self, name: str, time: float, value: object) -> None:
        self.latest[name] = Stamped(time, value)

    def missing(self, now: float) -> list[str]:
        """Inputs never received or older than ``max_age``."""
        needed = (*self.cameras, "joints", "gripper", "pose")
        return [n for n in needed if n not in self.latest or now - self.latest[n].time > self.max_age]

    def observation(self, now: float, decode) -> Observation:
        """The current observation; ``decode(raw_image) -> RGB uint8`` raises ValueError on a bad image,
        and so does a state the schema's :func:`state_vector` cannot build (e.g. too few joints)."""
        images = {cam: decode(self.latest[cam].value) for cam in self.cameras}
        pose = np.asarray(self.latest["pose"].value, dtype=np.float64)  # TCP position + xyzw
        state = state_vector(self.latest["joints"].value, self.latest["gripper"].value, pose[:3], pose[3:])
        return Observation(images, state, now)


@dataclass
class SkillSession:
    """One skill execution on one robot."""

    robot: str
    request: SkillRequest
    episode: EpisodeState
    started: float
    timeout: float
    success_probability: float = 0.0
    outcome: Outcome | None = None
    message: str = ""

    @property
    def steps(self) -> int:
        return self.episode.step

    def finish(self, outcome: Outcome, message: str) -> None:
        if self.outcome is None:
            self.outcome, self.message = outcome, message

    def on_success_estimate(
        self, skill: str, arguments: Sequence[str], probability: float, succeeded: bool
    ) -> None:
        """The classifier's estimate; only one about this session's skill counts."""
        if skill != self.request.skill or tuple(arguments) != self.request.arguments:
            return
        self.success_probability = float(probability)
        if succeeded:
            self.finish(
                Outcome.SUCCEEDED, f"the success classifier reports {skill} done (p={probability:.2f})"
            )

    def check_timeout(self, now: float) -> None:
        if now - self.started > self.timeout:
            self.finish(Outcome.TIMED_OUT, f"{self.request.skill} timed out after {self.timeout:.0f} s")


class SkillExecutor:
    """Runs the open sessions of all robots: one batched :meth:`Policy.act` per control step."""

    def __init__(self, policy: Policy, max_batch: int = 16) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.policy = policy
        self.max_batch = max_batch

    def start(self, robot: str, request: SkillRequest, now: float, timeout: float) -> SkillSession:
        """A new session; raises :class:`PolicyError` for a request the policy cannot serve."""
        if not timeout > 0 or not math.isfinite(timeout):
            raise PolicyError(f"timeout must be a positive number of seconds, got {timeout}")
        return SkillSession(robot, request, self.policy.start(request), now, timeout)

    def step(
        self, sessions: Sequence[SkillSession], inputs: Mapping[str, InputBuffer], now: float, decode
    ) -> dict[str, Action]:
        """One control step: the action for every open session whose robot has fresh inputs. A session
        whose observation cannot be used, or whose action is not finite, is finished FAILED."""
        ready: list[tuple[SkillSession, Observation]] = []
        for session in sessions:
            session.check_timeout(now)
            if session.outcome is not None:
                continue
            buffer = inputs[session.robot]
            if buffer.missing(now):
                continue  # waiting for the cameras / state: nothing is sent, the watchdog holds the arm
            try:
                observation = buffer.observation(now, decode)
                self.policy.check_observation(observation)
            except (ValueError, PolicyError) as exc:
                session.finish(Outcome.FAILED, f"cannot use the observation: {exc}")
                continue
            ready.append((session, observation))
        actions: dict[str, Action] = {}
        for start in range(0, len(ready), self.max_batch):
            batch = ready[start : start + self.max_batch]
            results = self.policy.act([s.episode for s, _ in batch], [o for _, o in batch])
            for (session, _), action in zip(batch, results, strict=True):
                if not action.is_finite():
                    session.finish(Outcome.FAILED, "the policy produced a non-finite action; arm stopped")
                    continue
                actions[session.robot] = action
        return actions
