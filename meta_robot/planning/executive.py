"""The executive: plan, dispatch each skill, check its effects with the classifiers, retry, replan.

Pure Python. The node (``meta_robot.nodes.executive_node``) supplies the three things it acts
through: a skill runner (the ExecuteSkill action), a state observer (the success classifier's
predicate estimates) and a stop check (e-stop, cancel). The loop is the EMBER executive:

* the state comes from the classifiers; a skill counts as done only when its effects are observed,
  whatever the skill server reported (the classifier is the grounding);
* a failed step is retried while its preconditions still hold and its retry budget lasts (a retry:
  the step that just failed, dispatched again; attempts of a ground skill count across replans);
* the plan is kept only while, from the observed state, it still reaches the goal (checked by
  progression); otherwise the world changed under it (an object moved, a skill half-done) and the
  executive replans from what it sees;
* it stops, with the arm idle, when the goal holds, the goal is unsatisfiable, a budget (skill
  executions, retries of a step, replans) is spent, or someone stops it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from meta_robot.planning.pddl import Goal
from meta_robot.planning.planner import PlannerTimeout, PlanResult, Unsatisfiable
from meta_robot.planning.state_estimation import StateEstimate
from meta_robot.planning.symbolic import Atom, PlanningError, holds, progress, unmet
from meta_robot.skills.registry import GroundSkill

logger = logging.getLogger(__name__)

SUCCEEDED, FAILED, TIMED_OUT, PREEMPTED = "succeeded", "failed", "timed_out", "preempted"


@dataclass(frozen=True)
class SkillOutcome:
    """What the skill server reported for one execution."""

    outcome: str  # SUCCEEDED | FAILED | TIMED_OUT | PREEMPTED
    success_probability: float = float("nan")
    message: str = ""


class SkillRunner(Protocol):
    def __call__(self, skill: GroundSkill) -> SkillOutcome: ...


class Observer(Protocol):
    def __call__(self) -> StateEstimate: ...


class PlanFunction(Protocol):
    def __call__(self, state: frozenset[Atom], goal: Goal) -> PlanResult: ...


@dataclass(frozen=True)
class Budgets:
    """Limits of one task: skill executions (retries included) and replans."""

    max_skills: int = 20
    max_replans: int = 5


@dataclass
class StepRecord:
    """One skill execution and what the classifiers saw after it."""

    skill: str
    attempt: int  # 1 = first try
    outcome: str  # the skill server's report
    verified: bool  # the skill's effects were observed afterwards
    success_probability: float  # the skill server's estimate
    effects_confidence: float  # the classifiers' afterwards: the least likely effect literal
    started: float  # s since the task started
    ended: float
    message: str = ""


@dataclass
class TaskReport:
    """Everything an evaluation, a log or a timeline plot needs about one task execution."""

    goal: str
    success: bool = False
    message: str = ""
    plans: list[list[str]] = field(default_factory=list)
    planning_seconds: list[float] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    retries: int = 0
    replans: int = 0
    seconds: float = 0.0

    @property
    def skills_executed(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Event:
    """Progress for feedback and logs: ``kind`` is plan, dispatch, result, retry, replan or done."""

    kind: str
    text: str
    plan: tuple[GroundSkill, ...] = ()
    step_index: int = 0
    report: TaskReport | None = None  # the task so far
    record: StepRecord | None = None  # result events: the execution


def reaches(state: frozenset[Atom], plan: Sequence[GroundSkill], goal: Goal) -> bool:
    """Whether ``plan`` is applicable from ``state`` step by step and ends with ``goal`` holding."""
    for skill in plan:
        if not holds(state, skill.preconditions):
            return False
        state = progress(state, skill)
    return holds(state, goal.literals)


class Executive:
    """Runs one task at a time; see the module docstring for the loop."""

    def __init__(
        self,
        plan: PlanFunction,
        run_skill: SkillRunner,
        observe: Observer,
        should_stop: Callable[[], str | None] = lambda: None,
        on_event: Callable[[Event], None] = lambda event: None,
        second_looks: int = 3,
    ) -> None:
        self._plan = plan
        self._run_skill = run_skill
        self._observe = observe
        self._should_stop = should_stop
        self._on_event = on_event
        self.second_looks = second_looks  # fresh observations before a goal counts as unsatisfiable

    def run(self, goal: Goal, budgets: Budgets = Budgets()) -> TaskReport:
        """Bring about ``goal``; never raises for task failures, the report says what happened."""
        report = TaskReport(goal=str(goal))
        start = time.monotonic()
        try:
            report.success, report.message = self._loop(goal, budgets, report, start)
        except Unsatisfiable as exc:
            report.success, report.message = False, f"the goal is unsatisfiable: {exc}"
        except PlannerTimeout as exc:
            report.success, report.message = False, f"planner timeout: {exc}"
        except (PlanningError, TimeoutError) as exc:
            report.success, report.message = False, str(exc)
        report.seconds = time.monotonic() - start
        verdict = "goal reached: " if report.success else "task failed: "
        self._emit(Event("done", verdict + report.message, report=report))
        return report

    def _loop(self, goal: Goal, budgets: Budgets, report: TaskReport, start: float) -> tuple[bool, str]:
        state = self._observe()
        plan: tuple[GroundSkill, ...] | None = None  # the latest plan
        done = 0  # its steps whose effects were observed
        second_looks = 0
        attempts: Counter[str] = Counter()
        while True:
            if reason := self._should_stop():
                return False, f"stopped: {reason}"
            if holds(state.atoms, goal.literals):
                return True, f"{goal} holds ({state.describe(lit.atom for lit in goal.literals)})"
            if plan is None or not reaches(state.atoms, plan[done:], goal):
                if plan is not None and second_looks == 0:
                    if report.replans >= budgets.max_replans:
                        return (
                            False,
                            f"replan budget of {budgets.max_replans} spent; the world keeps changing",
                        )
                    report.replans += 1
                    why = f"the plan no longer reaches the goal from {state.describe()}"
                    self._emit(Event("replan", why, plan, done, report))
                try:
                    plan, done = self._make_plan(state, goal, report), 0
                except Unsatisfiable:
                    if second_looks >= self.second_looks:
                        raise
                    # An object in no place the classifiers know (falling, hidden by the arm) makes
                    # any goal look unreachable; look again before declaring the goal unsatisfiable.
                    second_looks += 1
                    self._emit(Event("look_again", "no plan from what is seen; looking again", report=report))
                    state = self._observe()
                    continue
                second_looks = 0
                continue
            step = plan[done]
            if report.skills_executed >= budgets.max_skills:
                return False, f"budget of {budgets.max_skills} skill executions spent before {step}"
            attempts[str(step)] += 1
            if report.steps and report.steps[-1].skill == str(step) and not report.steps[-1].verified:
                report.retries += 1  # the step that just failed, again
                self._emit(
                    Event("retry", f"retrying {step} (attempt {attempts[str(step)]})", plan, done, report)
                )
            self._emit(Event("dispatch", f"{step} (attempt {attempts[str(step)]})", plan, done, report))
            record, state = self._execute(step, attempts[str(step)], start)
            report.steps.append(record)
            seen = "observed" if record.verified else "NOT observed"
            effects = state.describe(lit.atom for lit in step.effects)
            self._emit(
                Event(
                    "result",
                    f"{step}: {record.outcome}, effects {seen} ({effects})",
                    plan,
                    done,
                    report,
                    record,
                )
            )
            if record.verified:
                done += 1
                continue
            if reason := self._should_stop():
                return False, f"stopped during {step}: {reason}"
            if attempts[str(step)] > step.spec.retries:
                return False, (
                    f"{step} failed {attempts[str(step)]} times (retry budget {step.spec.retries}); "
                    f"unmet after the last try: {', '.join(map(str, unmet(state.atoms, step.effects)))}"
                )

    def _make_plan(self, state: StateEstimate, goal: Goal, report: TaskReport) -> tuple[GroundSkill, ...]:
        result = self._plan(state.atoms, goal)
        report.plans.append([str(s) for s in result.steps])
        report.planning_seconds.append(result.generate_seconds + result.search_seconds)
        text = " -> ".join(map(str, result.steps))
        self._emit(
            Event(
                "plan",
                f"plan ({len(result.steps)} skills, {result.backend}): {text}",
                result.steps,
                0,
                report,
            )
        )
        return tuple(result.steps)

    def _execute(self, step: GroundSkill, attempt: int, start: float) -> tuple[StepRecord, StateEstimate]:
        """Run ``step`` and look at the world afterwards (fresh classifier frames)."""
        started = time.monotonic() - start
        outcome = self._run_skill(step)
        state = self._observe()
        effect_probabilities = [
            1.0 - state.confidence.get(lit.atom, 0.0) if lit.negated else state.confidence.get(lit.atom, 0.0)
            for lit in step.effects
        ]
        record = StepRecord(
            skill=str(step),
            attempt=attempt,
            outcome=outcome.outcome,
            verified=holds(state.atoms, step.effects),
            success_probability=outcome.success_probability,
            effects_confidence=min(effect_probabilities, default=1.0),
            started=started,
            ended=time.monotonic() - start,
            message=outcome.message,
        )
        return record, state

    def _emit(self, event: Event) -> None:
        logger.info(event.text)
        self._on_event(event)
