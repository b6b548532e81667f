"""``meta-robot eval task NAME`` and the demo: long-horizon tasks in sim, through the real nodes.

Starts the sim graph with the success classifier, the executive and a skill server (the policy
server with the shipped checkpoints, or the privileged scripted operator to test the planning layer on
its own), optionally the recorder. For every held-out seed: reset the sim to the task's scenario,
send the task to ``executive/execute_task``, and let a referee judge the goal on the simulator's
privileged state when the executive is done (evaluation is the one place privileged state may
decide anything). With ``perturb``, a person's interference is simulated twice per episode: the
object being picked is shoved aside while the pick runs (a retry), and the first object put away
is taken back out onto the desk (a replan).

Reports the success rate with a 95 % Wilson interval, retries, replans and the time from a step's
verdict to the next dispatch; writes ``<task>.yaml`` and a timeline PNG per episode (skills, retries, the
classifiers' confidence in each step's effects).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml
from geometry_msgs.msg import Vector3
from meta_robot_interfaces.action import ExecuteTask
from meta_robot_interfaces.msg import SkillStatus
from meta_robot_interfaces.srv import PerturbObject

from meta_robot.apps.evaluation import HELD_OUT_SEED_START, Referee
from meta_robot.apps.sim_session import SimSession, sim_session, wait_for
from meta_robot.learning.metrics import wilson_interval
from meta_robot.planning.symbolic import holds
from meta_robot.planning.tasks import Task, load_tasks
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.graph import sim_graph
from meta_robot.skills.registry import load_registry
from meta_robot.skills.world import Grounding

logger = logging.getLogger(__name__)

SKILL_ACTIONS = {"policy": "policy/execute_skill", "scripted": "scripted_operator/execute_skill"}
STATE_NAMES = {getattr(SkillStatus, n): n.lower() for n in ("RUNNING", "SUCCEEDED", "FAILED")}
LIFTED_BY = 0.03  # m above its resting height: the pick has grasped the object and is lifting it
TAKE_OUT_AFTER_S = 1.0  # into the skill after a placement


@dataclass
class StepSpan:
    """One skill execution as the executive reported it on ``executive/steps``."""

    skill: str
    start: float  # s since the task was sent
    end: float = float("nan")
    verified: bool = False
    confidence: float = float("nan")


@dataclass
class TaskEpisode:
    seed: int
    success: bool  # the goal holds in the privileged state at the end
    executive_success: bool  # what the executive believed
    message: str
    skills_executed: int
    retries: int
    replans: int
    seconds: float
    perturbations: list[str] = field(default_factory=list)
    steps: list[StepSpan] = field(default_factory=list)
    recording: str = ""

    def gaps(self) -> list[float]:
        """s between a step's verdict and the next step's start (planning checks; the wait for fresh
        classifier frames comes before the verdict: see benchmarks/bench_executive.py)."""
        return [b.start - a.end for a, b in itertools.pairwise(self.steps) if np.isfinite(a.end)]


@dataclass
class TaskEvalReport:
    task: str
    skills: str  # policy | scripted
    perturb: bool
    episodes: list[TaskEpisode] = field(default_factory=list)

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    def summary(self) -> str:
        n = len(self.episodes)
        low, high = wilson_interval(self.successes, n)
        gaps = [g for e in self.episodes for g in e.gaps()]
        overhead = f"{np.median(gaps):.2f} s median" if gaps else "n/a"
        return (
            f"{self.task} ({self.skills} skills{', perturbed' if self.perturb else ''}): "
            f"{self.successes}/{n} = {self.successes / max(n, 1):.0%} (95 % CI {low:.0%}-{high:.0%}); "
            f"skills {sum(e.skills_executed for e in self.episodes) / max(n, 1):.1f}/episode, "
            f"retries {sum(e.retries for e in self.episodes)}, "
            f"replans {sum(e.replans for e in self.episodes)}; "
            f"verdict to next dispatch {overhead}"
        )


class Perturber:
    """Simulates a person interfering, once per kind per episode, driven by the executive's step
    stream: snatch the object of the first pick (of ``snatch`` objects, default any) out of the hand
    as it is lifted and drop it back on the desk a few cm away (the classifiers see the pick fail: a
    retry), and, while the next skill runs, take the first object put away back out onto the desk
    where it started (the plan no longer holds once that skill ends: a replan)."""

    def __init__(
        self,
        ros: BackgroundNode,
        referee: Referee,
        rng: np.random.Generator,
        snatch: Collection[str] | None = None,
        take_out: bool = True,
    ) -> None:
        self.client = ros.node.create_client(PerturbObject, "sim/perturb")
        self.referee = referee
        self.rng = rng
        self.snatch = None if snatch is None else set(snatch)
        self.take_out = take_out
        self.done: list[str] = []
        self._snatched = self._unstored = False
        self._stored: str | None = None  # put away, to be taken out during the next skill
        self._running: str | None = None
        self._home: dict[str, np.ndarray] = {}

    def start_episode(self) -> None:
        self.done.clear()
        self._snatched = self._unstored = False
        self._stored = None
        world = self.referee.world()
        self._home = {k: np.asarray(v, dtype=float) for k, v in (world.objects.items() if world else [])}

    def on_step(self, msg: SkillStatus) -> None:
        self._running = msg.skill if msg.state == SkillStatus.RUNNING else None
        running = msg.state == SkillStatus.RUNNING
        obj = msg.arguments[0] if msg.arguments else ""
        if (
            running
            and msg.skill == "pick"
            and not self._snatched
            and (self.snatch is None or obj in self.snatch)
        ):
            self._snatched = True
            threading.Thread(target=self._snatch, args=(obj,), daemon=True).start()
        elif running and self._stored is not None:  # not during a snatched pick: one upset per skill
            threading.Timer(TAKE_OUT_AFTER_S, self._take_out, args=(self._stored,)).start()
            self._stored = None
        if (
            msg.state == SkillStatus.SUCCEEDED
            and msg.skill.startswith("place")
            and self.take_out
            and not self._unstored
        ):
            self._unstored = True
            self._stored = obj

    def _snatch(self, name: str) -> None:
        """Wait until ``name`` is lifted LIFTED_BY above where it lay, then drop it beside its spot."""
        home = self._home.get(name)
        while home is not None and self._running == "pick":
            world = self.referee.world()
            if world is not None and world.objects[name][2] > home[2] + LIFTED_BY:
                angle, distance = self.rng.uniform(0, 2 * np.pi), self.rng.uniform(0.04, 0.07)
                target = home + np.array([np.cos(angle) * distance, np.sin(angle) * distance, 0.005])
                self._move(name, target - np.asarray(world.objects[name]), "snatched from the hand")
                return
            time.sleep(0.02)

    def _take_out(self, name: str) -> None:
        world = self.referee.world()
        if world is None or name not in self._home:
            return
        target = self._home[name] + np.array([0.0, 0.0, 0.005])
        self._move(name, target - np.asarray(world.objects[name]), "taken back out onto the desk")

    def _move(self, name: str, displacement: np.ndarray, what: str) -> None:
        request = PerturbObject.Request(object_name=name, yaw=float(self.rng.uniform(-0.5, 0.5)))
        request.displacement = Vector3(
            x=float(displacement[0]), y=float(displacement[1]), z=float(displacement[2])
        )
        self.client.call_async(request)
        self.done.append(f"{name} {what}")
        logger.info("perturbation: %s %s", name, what)


class TaskSession:
    """The executive's task action on a sim session, with the spans of the steps it reports."""

    def __init__(self, sim: SimSession, recorder: bool, timeout: float = 180.0) -> None:
        self.sim, self.recorder = sim, recorder
        self.task_client = sim.action_client(ExecuteTask, "executive/execute_task", timeout)
        self._steps: list[StepSpan] = []
        self._t0 = time.monotonic()
        self.on_step: Callable[[SkillStatus], None] = lambda msg: None
        sim.node.create_subscription(SkillStatus, "executive/steps", self._on_step, 50)

    def _on_step(self, msg: SkillStatus) -> None:
        now = time.monotonic() - self._t0
        name = f"{msg.skill}({', '.join(msg.arguments)})"
        if msg.state == SkillStatus.RUNNING:
            self._steps.append(StepSpan(name, now))
        elif self._steps and self._steps[-1].skill == name:
            span = self._steps[-1]
            span.end, span.verified, span.confidence = (
                now,
                msg.state == SkillStatus.SUCCEEDED,
                msg.success_probability,
            )
        self.on_step(msg)

    def run(
        self, goal: ExecuteTask.Goal, seed: int, timeout: float, echo: Callable[[str], None] = print
    ) -> tuple[ExecuteTask.Result, list[StepSpan], float]:
        """Send ``goal`` and wait for the executive's result, echoing each new plan as it comes."""
        self._steps, self._t0 = [], time.monotonic()
        last_plan: list[str] = []

        def feedback(msg) -> None:
            nonlocal last_plan
            plan = [f"{s.skill}({', '.join(s.arguments)})" for s in msg.feedback.plan.steps]
            if plan != last_plan:
                last_plan = plan
                echo(f"  plan: {' -> '.join(plan) or '(nothing to do)'}")

        if self.recorder:
            self.sim.start_episode(None, seed, goal.task or goal.goal, operator_name="executive")
        future = self.task_client.send_goal_async(goal, feedback_callback=feedback)
        handle = wait_for(future, 30.0, "the executive (goal)")
        if not handle.accepted:
            raise RuntimeError("the executive rejected the task")
        result = wait_for(
            handle.get_result_async(), timeout, f"the executive (task {goal.task or goal.goal})"
        ).result
        return result, list(self._steps), time.monotonic() - self._t0

    def stop_recording(self, success: bool, notes: str) -> str:
        """Close the episode :meth:`run` opened; its path ("" when not recording)."""
        if not self.recorder:
            return ""
        try:
            return self.sim.stop_episode(success, notes)
        except RuntimeError as exc:  # the evaluation goes on; the episode stays on disk, unfinished
            logger.error("%s", exc)
            return ""


def evaluate_task(
    task_name: str,
    episodes: int,
    out_dir: Path,
    skills: str = "policy",
    perturb: bool = False,
    policy: str = "goal_conditioned_bc",
    classifier: str = "success_classifier",
    seed_start: int = HELD_OUT_SEED_START,
    record: bool = False,
    camera_rate: float = 15.0,
    echo: Callable[[str], None] = print,
) -> TaskEvalReport:
    """Run ``task_name`` on ``episodes`` held-out seeds; results, timelines, node logs in ``out_dir``."""
    registry = load_registry()
    tasks = load_tasks(registry)
    if task_name not in tasks:
        raise ValueError(f"unknown task '{task_name}'; tasks: {', '.join(tasks)}")
    if skills not in SKILL_ACTIONS:
        raise ValueError(f"skills must be one of {list(SKILL_ACTIONS)}, got '{skills}'")
    task = tasks[task_name]
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = sim_graph(
        scenario=task.scenario,
        seed=seed_start,
        bridge_parameters={"camera_rate": camera_rate},
        scripted_operator=skills == "scripted",
        recorder_dir=str(out_dir / "episodes") if record else None,
        policy=policy if skills == "policy" else None,
        classifier=classifier,
        executive=SKILL_ACTIONS[skills],
    )
    report = TaskEvalReport(task.name, skills, perturb)
    grounding = Grounding(registry)
    rng = np.random.default_rng(seed_start)
    log_dir = out_dir / "logs" / task.name
    scripted = skills == "scripted"  # the executive runs the scripted operator's skills
    with sim_session(specs, "meta_robot_task", log_dir, scripted, record, timeout=180.0) as sim:
        ros = sim.ros
        referee = Referee(ros, grounding)
        session = TaskSession(sim, recorder=record)
        perturber = Perturber(ros, referee, rng) if perturb else None
        if perturber is not None:
            session.on_step = perturber.on_step
        for seed in range(seed_start + 1, seed_start + 1 + episodes):
            sim.check_running()
            sim.reset(task.scenario, seed, settle=1.0)  # the classifier sees the scene before the executive
            if perturber is not None:
                perturber.start_episode()
            echo(f"{task.name} seed {seed}: goal {task.goal}")
            timeout = task.max_skills * 120.0
            result, steps, seconds = session.run(ExecuteTask.Goal(task=task.name), seed, timeout, echo)
            time.sleep(0.5)
            world = referee.world()
            success = world is not None and holds(
                frozenset(a for a, v in grounding.atoms(world).items() if v), task.goal.literals
            )
            recording = session.stop_recording(success, result.message)
            episode = TaskEpisode(
                seed,
                success,
                result.success,
                result.message,
                result.skills_executed,
                result.retries,
                result.replans,
                seconds,
                list(perturber.done) if perturber else [],
                steps,
                recording,
            )
            report.episodes.append(episode)
            for span in steps:
                verdict = "ok" if span.verified else "FAILED"
                echo(
                    f"  {span.skill:32s} {verdict:6s} {span.end - span.start:5.1f} s  "
                    f"effects p={span.confidence:.2f}"
                )
            echo(
                f"  -> {'SUCCESS' if success else 'failure'} (executive: {result.message}); "
                f"{result.skills_executed} skills, {result.retries} retries, {result.replans} replans, "
                f"{seconds:.0f} s"
            )
            plot_timeline(episode, task, out_dir / f"{task.name}_seed{seed}.png")
    echo(report.summary())
    write_report(report, out_dir)
    return report


def write_report(report: TaskEvalReport, out_dir: Path) -> None:
    """``<task>[_perturbed].yaml``: the summary figures and every episode."""
    n = len(report.episodes)
    low, high = wilson_interval(report.successes, n)
    gaps = [g for e in report.episodes for g in e.gaps()]
    record = {
        "task": report.task,
        "skills": report.skills,
        "perturb": report.perturb,
        "episodes": n,
        "successes": report.successes,
        "success_rate": report.successes / n if n else 0.0,
        "ci95": [low, high],
        "overhead_between_skills_s": {"median": float(np.median(gaps)), "max": float(np.max(gaps))}
        if gaps
        else None,
        "results": [asdict(e) for e in report.episodes],
    }
    name = report.task + ("_perturbed" if report.perturb else "")
    (out_dir / f"{name}.yaml").write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")


def plot_timeline(episode: TaskEpisode, task: Task, path: Path) -> None:
    """Skills as bars on a time axis (green: effects observed, red: not; retries are repeated rows
    of the same skill), with the classifiers' confidence in each step's effects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(s.skill for s in episode.steps))
    fig, (ax, cx) = plt.subplots(
        2,
        1,
        figsize=(10, 1.2 + 0.35 * max(len(names), 3) + 2),
        sharex=True,
        gridspec_kw={"height_ratios": [max(len(names), 3), 3]},
    )
    for span in episode.steps:
        end = span.end if np.isfinite(span.end) else episode.seconds
        ax.barh(
            names.index(span.skill),
            end - span.start,
            left=span.start,
            color="tab:green" if span.verified else "tab:red",
            edgecolor="black",
        )
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    verdict = "SUCCESS" if episode.success else "failure"
    ax.set_title(
        f"{task.name} seed {episode.seed}: {verdict}; {episode.skills_executed} skills, "
        f"{episode.retries} retries, {episode.replans} replans"
        + (f"; perturbed: {', '.join(episode.perturbations)}" if episode.perturbations else ""),
        fontsize=9,
    )
    ends = [s.end for s in episode.steps if np.isfinite(s.end)]
    cx.plot(ends, [s.confidence for s in episode.steps if np.isfinite(s.end)], "o-")
    cx.axhline(0.5, color="gray", lw=0.5)
    cx.set_ylim(0, 1.05)
    cx.set_ylabel("P(effects)")
    cx.set_xlabel("s since the task was sent")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
