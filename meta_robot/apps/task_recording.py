"""``meta-robot record --task NAME``: whole long-horizon tasks demonstrated by the scripted operator.

One episode is one task from a fresh scenario seed: the plan comes from the planner on the
simulator's privileged state (a demonstration may use privileged state, as the scripted operator
does), each step is demonstrated through the teleop -> recorder path, and after a failed step the
rest is replanned from the privileged state until the goal holds or the task's budget is spent.
These episodes hold what single-skill demonstrations never show: several objects in one container,
objects inside a closed drawer, the arm working beside objects already put away. The success
classifier needs them to ground long tasks.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meta_robot_interfaces.action import ExecuteSkill

from meta_robot.apps.evaluation import Referee
from meta_robot.apps.sim_session import sim_session
from meta_robot.planning import Planner, load_tasks
from meta_robot.planning.symbolic import PlanningError, holds
from meta_robot.ros.graph import sim_graph
from meta_robot.skills.registry import load_registry
from meta_robot.skills.world import Grounding

logger = logging.getLogger(__name__)


@dataclass
class TaskRecordReport:
    task: str
    episodes: int = 0
    successes: int = 0
    skills: int = 0
    paths: list[str] = field(default_factory=list)


def record_tasks(
    task_names: list[str],
    episodes: int,
    out_dir: Path,
    seed_start: int = 5000,
    camera_rate: float = 15.0,
    log_dir: Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[TaskRecordReport]:
    """Record ``episodes`` scripted demonstrations of each task under ``out_dir``."""
    from tqdm import tqdm

    registry = load_registry()
    tasks = load_tasks(registry)
    for name in task_names:
        if name not in tasks:
            raise ValueError(f"unknown task '{name}'; tasks: {', '.join(tasks)}")
    planner = Planner(registry)
    grounding = Grounding(registry)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = sim_graph(
        seed=seed_start,
        bridge_parameters={"camera_rate": camera_rate},
        scripted_operator=True,
        recorder_dir=str(out_dir.resolve()),
    )
    reports = []
    seeds = itertools.count(seed_start)
    with sim_session(specs, "meta_robot_record_task", log_dir, recorder=True) as session:
        referee = Referee(session.ros, grounding)

        def state() -> frozenset:
            deadline = time.monotonic() + 10.0
            while (world := referee.world()) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("no privileged state from the sim bridge")
                time.sleep(0.05)
            return frozenset(a for a, v in grounding.atoms(world).items() if v)

        for name in task_names:
            task = tasks[name]
            report = TaskRecordReport(name)
            reports.append(report)
            bar = tqdm(total=episodes, desc=f"record {name}", unit="ep", disable=not progress)
            while report.episodes < episodes:
                session.check_running()
                seed = next(seeds)
                session.reset(task.scenario, seed, settle=0.5)
                executed = 0
                with session.recording(None, seed, task=name):
                    while not holds(state(), task.goal.literals) and executed < task.max_skills:
                        try:
                            step = planner.plan(state(), task.goal).steps[0]
                        except PlanningError as exc:
                            logger.warning("seed %d: %s", seed, exc)
                            break
                        executed += 1
                        if session.run_skill(step).outcome != ExecuteSkill.Result.SUCCEEDED:
                            logger.info("seed %d: %s failed; replanning", seed, step)
                        time.sleep(0.3)
                success = holds(state(), task.goal.literals)
                report.paths.append(session.stop_episode(success, f"{executed} skills"))
                report.episodes += 1
                report.successes += success
                report.skills += executed
                bar.update(1)
                bar.set_postfix(success=f"{report.successes / report.episodes:.0%}")
            bar.close()
            echo(
                f"{name}: {report.successes}/{report.episodes} demonstrations reached the goal, "
                f"{report.skills / max(report.episodes, 1):.1f} skills each"
            )
    return reports
