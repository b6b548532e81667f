"""The policy server's core without ROS: inputs, batching, and how sessions end."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from meta_robot.learning.policy import Action, EpisodeState, Observation, Policy, PolicyError, SkillRequest
from meta_robot.learning.skill_execution import InputBuffer, Outcome, SkillExecutor


class RecordingPolicy(Policy):
    """Moves 1 cm in +x per step; remembers the batch sizes it was called with."""

    kind = "test"
    skills = ("pick",)
    cameras = ("front",)

    def __init__(self, nan: bool = False) -> None:
        self.batches: list[int] = []
        self.nan = nan

    def start(self, request: SkillRequest) -> EpisodeState:
        if request.skill not in self.skills:
            raise PolicyError(f"unknown skill {request.skill!r}")
        return EpisodeState(request)

    def act(self, episodes: Sequence[EpisodeState], observations: Sequence[Observation]) -> list[Action]:
        self.batches.append(len(episodes))
        out = []
        for episode, observation in zip(episodes, observations, strict=True):
            episode.step += 1
            position = observation.state[8:11] + [np.nan if self.nan else 0.01, 0.0, 0.0]
            out.append(Action(position, observation.state[11:15], 0.08))
        return out


def _inputs(now: float, image=None) -> InputBuffer:
    buffer = InputBuffer(("front",), max_age=0.5)
    buffer.put("front", now, np.zeros((8, 8, 3), np.uint8) if image is None else image)
    buffer.put("joints", now, [0.0] * 9)
    buffer.put("gripper", now, 0.08)
    buffer.put("pose", now, [0.4, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])
    return buffer


def _decode(raw):
    if raw.dtype != np.uint8:
        raise ValueError("unsupported image encoding 'mono16'")
    return raw


def test_robots_are_stepped_in_batches_and_each_gets_its_action() -> None:
    policy = RecordingPolicy()
    executor = SkillExecutor(policy, max_batch=2)
    sessions = [executor.start(f"r{i}", SkillRequest("pick"), 0.0, 10.0) for i in range(3)]
    inputs = {f"r{i}": _inputs(0.0) for i in range(3)}
    actions = executor.step(sessions, inputs, 0.1, _decode)
    assert sorted(actions) == ["r0", "r1", "r2"]
    assert policy.batches == [2, 1]
    assert actions["r0"].position[0] == pytest.approx(0.41)
    assert all(s.steps == 1 for s in sessions)


def test_stale_or_missing_inputs_pause_the_session_without_ending_it() -> None:
    executor = SkillExecutor(RecordingPolicy())
    session = executor.start("", SkillRequest("pick"), 0.0, 10.0)
    stale = _inputs(0.0)
    assert executor.step([session], {"": stale}, 2.0, _decode) == {}
    assert stale.missing(2.0) == ["front", "joints", "gripper", "pose"]
    empty = InputBuffer(("front",))
    assert executor.step([session], {"": empty}, 0.1, _decode) == {}
    assert session.outcome is None


def test_a_bad_image_or_a_nan_action_fails_the_session_and_sends_nothing() -> None:
    executor = SkillExecutor(RecordingPolicy())
    session = executor.start("", SkillRequest("pick"), 0.0, 10.0)
    inputs = {"": _inputs(0.0, image=np.zeros((8, 8), np.uint16))}
    assert executor.step([session], inputs, 0.1, _decode) == {}
    assert session.outcome is Outcome.FAILED and "mono16" in session.message

    nan_executor = SkillExecutor(RecordingPolicy(nan=True))
    session = nan_executor.start("", SkillRequest("pick"), 0.0, 10.0)
    assert nan_executor.step([session], {"": _inputs(0.0)}, 0.1, _decode) == {}
    assert session.outcome is Outcome.FAILED and "non-finite" in session.message


def test_sessions_end_on_timeout_and_on_the_classifiers_success_for_their_own_skill() -> None:
    executor = SkillExecutor(RecordingPolicy())
    session = executor.start("", SkillRequest("pick", ("red_cube",)), 0.0, 1.0)
    session.on_success_estimate("pick", ["blue_bar"], 0.99, True)  # another object: not ours
    assert session.outcome is None
    session.on_success_estimate("pick", ["red_cube"], 0.4, False)
    assert session.success_probability == pytest.approx(0.4) and session.outcome is None
    session.on_success_estimate("pick", ["red_cube"], 0.97, True)
    assert session.outcome is Outcome.SUCCEEDED
    late = executor.start("", SkillRequest("pick"), 0.0, 1.0)
    assert executor.step([late], {"": _inputs(1.5)}, 1.5, _decode) == {}
    assert late.outcome is Outcome.TIMED_OUT
    late.finish(Outcome.PREEMPTED, "too late")  # the first ending stands
    assert late.outcome is Outcome.TIMED_OUT


def test_requests_the_policy_cannot_serve_are_refused() -> None:
    executor = SkillExecutor(RecordingPolicy())
    with pytest.raises(PolicyError, match="unknown skill"):
        executor.start("", SkillRequest("fly"), 0.0, 10.0)
    with pytest.raises(PolicyError, match="timeout"):
        executor.start("", SkillRequest("pick"), 0.0, float("nan"))
    with pytest.raises(ValueError, match="max_batch"):
        SkillExecutor(RecordingPolicy(), max_batch=0)
