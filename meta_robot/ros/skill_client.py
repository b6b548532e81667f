"""Run registry skills on an ExecuteSkill action server and wait for them, cancelling on a stop.

The executive's one way to execute a step: it sends the goal, waits (in its worker thread) for the
result within the skill's timeout plus a grace, and cancels the goal on e-stop, on a cancelled task or
on an overrun, always waiting for the server to confirm the end so the arm is stopped before the next
step. The result is the executive core's :class:`~meta_robot.planning.executive.SkillOutcome`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from meta_robot_interfaces.action import ExecuteSkill
from rclpy.action import ActionClient
from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from rclpy.task import Future

from meta_robot.planning.executive import FAILED, PREEMPTED, SUCCEEDED, TIMED_OUT, SkillOutcome
from meta_robot.skills.registry import GroundSkill

OUTCOMES = {
    ExecuteSkill.Result.SUCCEEDED: SUCCEEDED,
    ExecuteSkill.Result.FAILED: FAILED,
    ExecuteSkill.Result.TIMED_OUT: TIMED_OUT,
    ExecuteSkill.Result.PREEMPTED: PREEMPTED,
}
POLL_S = 0.05


class TaskStopped(Exception):
    """The task was cancelled or the e-stop latched while waiting."""


class SkillClient:
    """An ExecuteSkill client that ``stop_reason()`` (None: go on) can interrupt."""

    def __init__(
        self,
        node: Node,
        action: str,
        group: CallbackGroup,
        stop_reason: Callable[[], str | None],
        grace: float,
    ) -> None:
        self.node, self.stop_reason, self.grace = node, stop_reason, grace
        self.client = ActionClient(node, ExecuteSkill, action, callback_group=group)

    def wait(self, future: Future, timeout: float, what: str, stoppable: bool = True):
        """Block this worker thread until ``future`` is done; TaskStopped on e-stop or cancel."""
        deadline = time.monotonic() + timeout
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        while not done.wait(POLL_S):
            if stoppable and (reason := self.stop_reason()):
                raise TaskStopped(reason)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer within {timeout:.0f} s")
        return future.result()

    def run(self, skill: GroundSkill) -> SkillOutcome:
        """Send ``skill`` to the skill server and wait for its result; cancel it on stop or overrun."""
        if not self.client.wait_for_server(timeout_sec=10.0):
            raise TimeoutError(f"the skill action {self.client._action_name} is not served")
        goal = ExecuteSkill.Goal(skill=skill.name, arguments=list(skill.arguments))
        # Not stoppable: a goal the server accepts while we wait must be cancelled, which the result's
        # wait below does at once if the e-stop latched or the task was cancelled meanwhile.
        goal_handle = self.wait(
            self.client.send_goal_async(goal), 10.0, f"the skill server (goal {skill})", stoppable=False
        )
        if not goal_handle.accepted:
            return SkillOutcome(FAILED, message=f"the skill server rejected {skill}")
        result_future = goal_handle.get_result_async()
        try:
            reply = self.wait(result_future, skill.spec.timeout + self.grace, f"{skill}")
        except (TaskStopped, TimeoutError) as exc:
            self.node.get_logger().warning(f"cancelling {skill}: {exc}")
            self.wait(goal_handle.cancel_goal_async(), 5.0, f"cancel of {skill}", stoppable=False)
            try:
                self.wait(result_future, 5.0, f"{skill} after cancel", stoppable=False)
            except TimeoutError:
                self.node.get_logger().error(f"{skill} did not end within 5 s of its cancel")
            outcome = PREEMPTED if isinstance(exc, TaskStopped) else TIMED_OUT
            return SkillOutcome(outcome, message=str(exc))
        r = reply.result
        return SkillOutcome(OUTCOMES.get(r.outcome, FAILED), float(r.success_probability), r.message)
