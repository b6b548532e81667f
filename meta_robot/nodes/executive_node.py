"""The executive: serves ``executive/execute_task`` (ExecuteTask) over the skill registry.

A goal names a task from ``config/tasks.yaml`` or gives a PDDL goal. The node estimates the symbolic
state from ``classifier/predicates`` (never from the simulator), plans with the symbolic planner,
sends each step to the skill server's ExecuteSkill action (``policy/execute_skill`` by default),
checks the step's effects with the classifier, retries and replans
(:mod:`meta_robot.planning.executive`). Feedback carries the plan, the current step and the retries;
``executive/plan`` (latched) holds the latest plan for ``ros2 topic echo`` and the recorder, and
``executive/steps`` (SkillStatus) marks each step's start and verdict, for timelines.

E-stop (``safety/estop_active``) or a cancel stops the task: the running skill is cancelled, which
stops the arm where it is, and no further skill starts. An unknown task, object or predicate, an
unsatisfiable goal or a planner timeout end the task with a message and the arm idle.

Threads: the task loop blocks (it waits for skills and for fresh classifier frames), so it runs on
one thread of a small multi-threaded executor while the others deliver messages and action replies.
The node's inputs are light (predicate estimates at camera rate, the e-stop flag).
"""

from __future__ import annotations

import sys
import threading
import time

from meta_robot_interfaces.action import ExecuteTask
from meta_robot_interfaces.msg import Plan, PredicateEstimates, SkillStatus
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Bool

from meta_robot.planning.executive import (
    Budgets,
    Event,
    Executive,
)
from meta_robot.planning.executive_setup import ExecutiveParameters, state_estimator, warm_up
from meta_robot.planning.planner import Planner
from meta_robot.planning.state_estimation import PredicateFrame, StateEstimate
from meta_robot.planning.symbolic import PlanningError
from meta_robot.planning.tasks import load_tasks, resolve_task
from meta_robot.ros.driver_interface import LATCHED
from meta_robot.ros.entry import run_node
from meta_robot.ros.parameters import declare_config
from meta_robot.ros.plan_messages import plan_msg, step_msg
from meta_robot.ros.skill_client import SkillClient
from meta_robot.skills.registry import RegistryError, load_registry


class ExecutiveNode(Node):
    def __init__(self) -> None:
        super().__init__("executive")
        p = declare_config(self, "", ExecutiveParameters)
        self.registry = load_registry(p.registry or None)
        self.tasks = load_tasks(self.registry, p.tasks or None)
        self.planner = Planner(self.registry, p.planner, p.planning_time_limit)
        self.estimator = state_estimator(self.registry, p)
        self.state_timeout = p.state_timeout
        self.default_budgets = Budgets(p.max_skills, p.max_replans)
        started = time.perf_counter()
        warmed = warm_up(self.planner, self.tasks.values())
        self.get_logger().info(
            f"planner {self.planner.backend} ready in {time.perf_counter() - started:.2f} s "
            f"(warmed up on {warmed}); tasks: {', '.join(self.tasks)}"
        )

        self._estop = False
        self._busy = threading.Lock()
        self._handle = None  # the running ExecuteTask goal
        group = ReentrantCallbackGroup()
        self.create_subscription(PredicateEstimates, "classifier/predicates", self._on_predicates, 10)
        self.create_subscription(Bool, "safety/estop_active", self._on_estop, LATCHED)
        self._plan_pub = self.create_publisher(Plan, "executive/plan", LATCHED)
        self._step_pub = self.create_publisher(SkillStatus, "executive/steps", 10)
        self._skills = SkillClient(self, p.skill_action, group, self._stop_reason, p.skill_grace)
        ActionServer(
            self,
            ExecuteTask,
            "executive/execute_task",
            execute_callback=self._execute,
            goal_callback=lambda _: GoalResponse.ACCEPT,  # bad goals are aborted with a message
            cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=group,
        )
        self.get_logger().info(
            f"serving {self.resolve_topic_name('executive/execute_task')}; skills through "
            f"{self.resolve_topic_name(p.skill_action)}; state from classifier/predicates "
            f"(window {self.estimator.window} frames)"
        )

    # -- inputs ------------------------------------------------------------------------------------
    def _on_predicates(self, msg: PredicateEstimates) -> None:
        try:
            frame = PredicateFrame.from_lists(msg.atoms, msg.probabilities, msg.thresholds, msg.holds)
        except (ValueError, PlanningError) as exc:
            self.get_logger().error(
                f"ignoring a malformed predicate estimate: {exc}", throttle_duration_sec=5.0
            )
            return
        self.estimator.add(frame)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data and not self._estop:
            self.get_logger().warning("e-stop latched: stopping the task")
        self._estop = bool(msg.data)

    def _stop_reason(self) -> str | None:
        if self._estop:
            return "e-stop is latched"
        if self._handle is not None and self._handle.is_cancel_requested:
            return "the task was cancelled"
        return None

    # -- the task ----------------------------------------------------------------------------------
    def _execute(self, handle) -> ExecuteTask.Result:
        request = handle.request
        result = ExecuteTask.Result()
        if not self._busy.acquire(blocking=False):
            result.message = "the executive is already running a task; cancel it first"
            handle.abort()
            return result
        try:
            self._handle = handle
            return self._run_task(handle, request, result)
        finally:
            self._handle = None
            self._busy.release()

    def _run_task(self, handle, request: ExecuteTask.Goal, result: ExecuteTask.Result) -> ExecuteTask.Result:
        try:
            name, goal = resolve_task(self.tasks, request.task or request.goal, self.registry)
        except (PlanningError, RegistryError) as exc:
            self.get_logger().error(f"refusing task {request.task or request.goal!r}: {exc}")
            result.message = str(exc)
            handle.abort()
            return result
        budgets = self.default_budgets
        if name in self.tasks:
            budgets = Budgets(self.tasks[name].max_skills, budgets.max_replans)
        self.get_logger().info(f"task {name}: goal {goal}; budget {budgets.max_skills} skill executions")
        self.estimator.forget()
        executive = Executive(
            plan=self.planner.plan,
            run_skill=self._skills.run,
            observe=self._observe,
            should_stop=self._stop_reason,
            on_event=lambda event: self._on_event(handle, name, event),
        )
        try:
            report = executive.run(goal, budgets)
        except Exception as exc:  # a bug must still end the goal with a message, never an empty result
            self.get_logger().error(f"task {name} aborted by an unexpected error: {exc!r}")
            result.message = f"the executive failed: {exc!r}"
            handle.abort()
            return result
        result.success = report.success
        result.message = report.message
        result.skills_executed = report.skills_executed
        result.retries = report.retries
        result.replans = report.replans
        summary = (
            f"task {name}: {'succeeded' if report.success else 'FAILED'} after {report.skills_executed} "
            f"skills, {report.retries} retries, {report.replans} replans, {report.seconds:.1f} s: "
            f"{report.message}"
        )
        if report.success:  # one severity per call site: rclpy refuses to mix them
            self.get_logger().info(summary)
        else:
            self.get_logger().error(summary)
        if report.success:
            handle.succeed()
        elif handle.is_cancel_requested:
            handle.canceled()
        else:
            handle.abort()
        return result

    def _on_event(self, handle, goal_name: str, event: Event) -> None:
        self.get_logger().info(event.text)
        stamp = self.get_clock().now().to_msg()
        if event.kind == "plan":
            self._plan_pub.publish(plan_msg(goal_name, event.plan, stamp))
        if event.kind in ("dispatch", "result"):
            self._step_pub.publish(step_msg(event, stamp))
        if event.kind in ("plan", "dispatch", "retry", "replan") and event.report is not None:
            feedback = ExecuteTask.Feedback()
            feedback.plan = plan_msg(goal_name, event.plan, stamp)
            feedback.current_step = event.step_index
            feedback.retries = event.report.retries
            handle.publish_feedback(feedback)

    def _observe(self) -> StateEstimate:
        return self.estimator.wait(timeout=self.state_timeout)


def _spin(node: Node) -> None:
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    executor.spin()


def main(args: list[str] | None = None) -> None:
    """Entry point: ``executive --ros-args --params-file config/executive.yaml``."""
    sys.exit(run_node(ExecutiveNode, spin=_spin, args=args))


if __name__ == "__main__":
    main()
