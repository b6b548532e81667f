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
from dataclasses import dataclass

from meta_robot_interfaces.action import ExecuteSkill, ExecuteTask
from meta_robot_interfaces.msg import Plan, PlanStep, PredicateEstimates, SkillStatus
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import Bool

from meta_robot.planning.executive import (
    FAILED,
    PREEMPTED,
    SUCCEEDED,
    TIMED_OUT,
    Budgets,
    Event,
    Executive,
    SkillOutcome,
)
from meta_robot.planning.planner import Planner
from meta_robot.planning.state_estimation import Occlusion, PredicateFrame, StateEstimate, StateEstimator
from meta_robot.planning.symbolic import PlanningError, all_atoms, parse_atom
from meta_robot.planning.tasks import load_tasks, resolve_task
from meta_robot.ros.driver_interface import LATCHED
from meta_robot.ros.entry import run_node
from meta_robot.ros.parameters import declare_config, param
from meta_robot.skills.registry import GroundSkill, RegistryError, load_registry

OUTCOMES = {
    ExecuteSkill.Result.SUCCEEDED: SUCCEEDED,
    ExecuteSkill.Result.FAILED: FAILED,
    ExecuteSkill.Result.TIMED_OUT: TIMED_OUT,
    ExecuteSkill.Result.PREEMPTED: PREEMPTED,
}
POLL_S = 0.05


@dataclass(frozen=True)
class ExecutiveParameters:
    """The executive's parameters (config/executive.yaml sets only what differs)."""

    skill_action: str = param("policy/execute_skill", "the ExecuteSkill server that runs each step")
    planner: str = param(
        "auto", "auto (Fast Downward when installed, else pyperplan), fast-downward, pyperplan"
    )
    planning_time_limit: float = param(10.0, "s per plan; over it the task fails with a planner timeout")
    state_window: int = param(5, "classifier frames voted over for the state after each skill", (1, 100))
    state_timeout: float = param(10.0, "s to wait for those frames before failing the task")
    max_skills: int = param(20, "skill executions (retries included) for a raw PDDL goal", (1, 1000))
    max_replans: int = param(5, "replans after the world stopped matching the plan", (0, 1000))
    skill_grace: float = param(15.0, "s past a skill's registry timeout before the executive cancels it")
    registry: str = param("", "skill registry file; empty: config/skills.yaml")
    tasks: str = param("", "task file; empty: config/tasks.yaml")
    place_predicates: tuple[str, ...] = param(
        ("holding", "on_desk", "in_drawer", "on_shelf"),
        "every object is in exactly one of these places; placed nowhere, it takes its likeliest",
    )
    exclusive_atoms: tuple[str, ...] = param(
        ("(drawer_open)", "(drawer_closed)"), "atoms of which one holds; undecided, the likelier is taken"
    )
    hand_atoms: tuple[str, ...] = param(
        ("(hand_empty)", "(holding ?object)"), "the hand holds one object or nothing (?type: every object)"
    )
    occlusions: tuple[str, ...] = param(
        ("(drawer_closed) hides in_drawer",),
        "what the camera cannot see keeps its belief: (ATOM) hides PREDICATE",
    )


class TaskStopped(Exception):
    """The task was cancelled or the e-stop latched while waiting."""


class ExecutiveNode(Node):
    def __init__(self) -> None:
        super().__init__("executive")
        p = declare_config(self, "", ExecutiveParameters)
        self.registry = load_registry(p.registry or None)
        self.tasks = load_tasks(self.registry, p.tasks or None)
        self.planner = Planner(self.registry, p.planner, p.planning_time_limit)
        unknown = [q for q in p.place_predicates if q not in self.registry.predicates]
        if unknown:
            raise ValueError(f"place_predicates {unknown} are not predicates of the registry")
        one_of = [[(q, obj) for q in p.place_predicates] for obj in self.registry.types.get("object", ())]
        one_of.append([parse_atom(a) for a in p.exclusive_atoms])
        one_of.append(self._ground_all(p.hand_atoms))
        occlusions = [Occlusion.parse(o) for o in p.occlusions]
        self.estimator = StateEstimator(p.state_window, one_of, occlusions)
        self.state_timeout = p.state_timeout
        self.skill_grace = p.skill_grace
        self.default_budgets = Budgets(p.max_skills, p.max_replans)
        started = time.perf_counter()
        warmed = self._warm_up()
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
        self._skills = ActionClient(self, ExecuteSkill, p.skill_action, callback_group=group)
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

    def _ground_all(self, texts) -> list:
        """``(holding ?object)`` -> one atom per object of that type; plain atoms as they are."""
        atoms = []
        for text in texts:
            head, *args = str(text).strip("() ").split()
            combos: list[tuple[str, ...]] = [()]
            for arg in args:
                values = self.registry.types[arg[1:]] if arg.startswith("?") else (arg,)
                combos = [c + (v,) for c in combos for v in values]
            atoms += [(head, *c) for c in combos]
        return atoms

    def _warm_up(self) -> str:
        """Plan one task from a tidy start so the planner's import and first search are paid before
        the first goal (unified-planning's import alone takes seconds)."""
        tidy = ("hand_empty", "drawer_closed", "on_desk")
        start = frozenset(a for a in all_atoms(self.registry) if a[0] in tidy)
        for task in self.tasks.values():
            try:
                self.planner.plan(start, task.goal)
                return task.name
            except PlanningError:
                continue
        return "nothing (no task plans from a tidy desk)"

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
            run_skill=self._run_skill,
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
        if event.kind == "plan":
            self._plan_pub.publish(self._plan_msg(goal_name, event.plan))
        if event.kind in ("dispatch", "result"):
            self._step_pub.publish(self._step_msg(event))
        if event.kind in ("plan", "dispatch", "retry", "replan") and event.report is not None:
            feedback = ExecuteTask.Feedback()
            feedback.plan = self._plan_msg(goal_name, event.plan)
            feedback.current_step = event.step_index
            feedback.retries = event.report.retries
            handle.publish_feedback(feedback)

    def _step_msg(self, event: Event) -> SkillStatus:
        """A step starting (RUNNING) or judged (SUCCEEDED when its effects were observed, else FAILED;
        ``success_probability``: the classifiers' confidence in the least likely effect)."""
        skill = event.plan[event.step_index]
        msg = SkillStatus(skill=skill.name, arguments=list(skill.arguments), step=event.step_index)
        msg.header.stamp = self.get_clock().now().to_msg()
        if event.record is None:
            msg.state = SkillStatus.RUNNING
            msg.success_probability = float("nan")
        else:
            msg.state = SkillStatus.SUCCEEDED if event.record.verified else SkillStatus.FAILED
            msg.success_probability = float(event.record.effects_confidence)
        return msg

    def _plan_msg(self, goal_name: str, steps: tuple[GroundSkill, ...]) -> Plan:
        msg = Plan()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.goal = goal_name
        msg.steps = [PlanStep(skill=s.name, arguments=list(s.arguments)) for s in steps]
        return msg

    def _observe(self) -> StateEstimate:
        return self.estimator.wait(timeout=self.state_timeout)

    def _wait(self, future: Future, timeout: float, what: str, stoppable: bool = True):
        """Block this worker thread until ``future`` is done; TaskStopped on e-stop or cancel."""
        deadline = time.monotonic() + timeout
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        while not done.wait(POLL_S):
            if stoppable and (reason := self._stop_reason()):
                raise TaskStopped(reason)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer within {timeout:.0f} s")
        return future.result()

    def _run_skill(self, skill: GroundSkill) -> SkillOutcome:
        """Send ``skill`` to the skill server and wait for its result; cancel it on stop or overrun."""
        if not self._skills.wait_for_server(timeout_sec=10.0):
            raise TimeoutError(f"the skill action {self._skills._action_name} is not served")
        goal = ExecuteSkill.Goal(skill=skill.name, arguments=list(skill.arguments))
        # Not stoppable: a goal the server accepts while we wait must be cancelled, which the result's
        # wait below does at once if the e-stop latched or the task was cancelled meanwhile.
        goal_handle = self._wait(
            self._skills.send_goal_async(goal), 10.0, f"the skill server (goal {skill})", stoppable=False
        )
        if not goal_handle.accepted:
            return SkillOutcome(FAILED, message=f"the skill server rejected {skill}")
        result_future = goal_handle.get_result_async()
        try:
            reply = self._wait(result_future, skill.spec.timeout + self.skill_grace, f"{skill}")
        except (TaskStopped, TimeoutError) as exc:
            self.get_logger().warning(f"cancelling {skill}: {exc}")
            self._wait(goal_handle.cancel_goal_async(), 5.0, f"cancel of {skill}", stoppable=False)
            try:
                self._wait(result_future, 5.0, f"{skill} after cancel", stoppable=False)
            except TimeoutError:
                self.get_logger().error(f"{skill} did not end within 5 s of its cancel")
            outcome = PREEMPTED if isinstance(exc, TaskStopped) else TIMED_OUT
            return SkillOutcome(outcome, message=str(exc))
        r = reply.result
        return SkillOutcome(OUTCOMES.get(r.outcome, FAILED), float(r.success_probability), r.message)


def _spin(node: Node) -> None:
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    executor.spin()


def main(args: list[str] | None = None) -> None:
    """Entry point: ``executive --ros-args --params-file config/executive.yaml``."""
    sys.exit(run_node(ExecutiveNode, spin=_spin, args=args))


if __name__ == "__main__":
    main()
