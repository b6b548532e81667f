"""``meta-robot collect``: scripted demonstrations in parallel headless workers, stored as states.

For every episode: a seed, the scenario and set-up skills its preconditions need, then the scripted
expert's demonstration through the teleop integrator and the driver's safety layer, recorded per
control step (:mod:`meta_robot.engine.store`). Failed demonstrations are kept with outcome "failure"
(the classifier's negatives); a seed whose set-up fails is skipped and counted. Episodes already on
disk are not collected again, so an interrupted collection resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meta_robot.engine.store import EngineEpisode, EngineEpisodeMeta, episode_path, write_episode
from meta_robot.engine.workers import JobResult, WorkerPool, default_workers
from meta_robot.skills.episode_plan import argument_cycle
from meta_robot.skills.registry import Registry, load_registry

logger = logging.getLogger(__name__)

TRAIN_SEED_START = 1000  # demonstrations; held-out evaluation seeds start at 100 000


TASK_SEED_START = 5000  # whole-task demonstrations


@dataclass(frozen=True)
class SkillJob:
    """One episode of a ground skill from one seed (a demonstration, or a learner's rollout)."""

    skill: str
    arguments: tuple[str, ...]
    seed: int

    @property
    def folder(self) -> str:
        return self.skill

    def path(self, root: Path, source: str = "expert", round: int = 0) -> Path:
        """Where this job's episode is stored (the name does not depend on how it turned out)."""
        meta = EngineEpisodeMeta(self.skill, self.arguments, "", self.seed, source, "", "", round=round)
        return episode_path(root, meta)

    def stored(self, root: Path, source: str = "expert", round: int = 0) -> bool:
        return self.path(root, source, round).is_file()

    def __str__(self) -> str:
        return f"{self.skill} {list(self.arguments)} seed {self.seed}"


@dataclass(frozen=True)
class TaskJob:
    """One whole-task demonstration from one seed."""

    task: str
    seed: int

    @property
    def folder(self) -> str:
        from meta_robot.engine.simulation import task_skill

        return task_skill(self.task)

    def stored(self, root: Path) -> bool:
        return episode_path(root, EngineEpisodeMeta(self.folder, (), "", self.seed, "task", "", "")).is_file()

    def __str__(self) -> str:
        return f"task {self.task} seed {self.seed}"


@dataclass
class CollectReport:
    """What a collection produced, per skill, and how fast."""

    episodes: Counter[str] = field(default_factory=Counter)  # stored, by skill
    successes: Counter[str] = field(default_factory=Counter)
    setup_failures: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # jobs that raised or whose worker died
    skipped: int = 0  # already on disk
    steps: int = 0  # control steps stored
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    workers: int = 1

    @property
    def episodes_per_hour(self) -> float:
        return 3600.0 * sum(self.episodes.values()) / self.wall_seconds if self.wall_seconds else 0.0

    def summary(self) -> str:
        lines = [
            f"{s}: {self.episodes[s]} episodes, {self.successes[s]} successful, "
            f"{self.setup_failures[s]} seeds skipped (set-up failed)"
            for s in sorted(set(self.episodes) | set(self.setup_failures))
        ]
        total = sum(self.episodes.values())
        lines.append(
            f"{total} episodes ({self.steps} steps, {self.sim_seconds:.0f} s of sim time) in "
            f"{self.wall_seconds:.0f} s on {self.workers} workers = {self.episodes_per_hour:.0f} "
            f"episodes/hour; {self.skipped} already on disk, {len(self.errors)} lost to errors"
        )
        return "\n".join(lines)


def resolve_skills(registry: Registry, skills: Sequence[str]) -> list[str]:
    """``all`` -> every registry skill; unknown names fail with the known ones listed."""
    if list(skills) == ["all"] or not skills:
        return list(registry.skills)
    for name in skills:
        registry.skill(name)  # raises RegistryError naming the known skills
    return list(skills)


def skill_jobs(
    registry: Registry, skills: Sequence[str], episodes: int, seed_start: int = TRAIN_SEED_START
) -> list[SkillJob]:
    """``episodes`` jobs per skill, cycling through its groundings, seeds ``seed_start`` onwards,
    interleaved across skills (an interrupted run has some of every skill)."""
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    jobs = []
    for name in resolve_skills(registry, skills):
        groundings = argument_cycle(registry, name, None)
        for i in range(episodes):
            ground = next(groundings)
            jobs.append(SkillJob(name, tuple(ground.arguments), seed_start + i))
    return sorted(jobs, key=lambda j: (j.seed, j.skill))


def _skill_worker(root: str) -> dict[str, Any]:
    from meta_robot.engine.simulation import EngineSim

    return {"sim": EngineSim(), "root": root}


def _task_worker(root: str) -> dict[str, Any]:
    from meta_robot.engine.simulation import EngineSim
    from meta_robot.planning import Planner, load_tasks

    sim = EngineSim()
    return {"sim": sim, "root": root, "planner": Planner(sim.registry), "tasks": load_tasks(sim.registry)}


def _run_skill_job(state: dict[str, Any], job: SkillJob) -> dict[str, Any]:
    from meta_robot.engine.simulation import SetupFailed

    sim = state["sim"]
    try:
        episode = sim.run_expert(sim.registry.ground(job.skill, job.arguments), job.seed)
    except SetupFailed as exc:
        return {"setup_failed": str(exc)}
    return _stored_summary(state["root"], episode)


def _run_task_job(state: dict[str, Any], job: TaskJob) -> dict[str, Any]:
    episode = state["sim"].run_task(state["tasks"][job.task], job.seed, state["planner"])
    return _stored_summary(state["root"], episode)


def _stored_summary(root: str, episode: EngineEpisode) -> dict[str, Any]:
    path = write_episode(root, episode)
    return {
        "path": str(path),
        "success": episode.meta.success,
        "steps": len(episode),
        "sim_seconds": episode.meta.duration,
    }


def _collect(
    root: Path,
    jobs: Sequence[SkillJob | TaskJob],
    init,
    handler,
    workers: int | None,
    desc: str,
    progress: bool,
) -> CollectReport:
    """Run the jobs not yet on disk in a worker pool and account for every one."""
    from tqdm import tqdm

    root.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if not j.stored(root)]
    report = CollectReport(workers=workers or default_workers(), skipped=len(jobs) - len(todo))
    started = time.perf_counter()
    if todo:
        with (
            WorkerPool(min(report.workers, len(todo)), init, str(root), handler) as pool,
            tqdm(total=len(todo), desc=desc, unit="ep", disable=not progress) as bar,
        ):
            for result in pool.map(todo):
                _account(report, result)
                bar.update(1)
                done = sum(report.episodes.values())
                bar.set_postfix(ok=f"{sum(report.successes.values())}/{done}", lost=len(report.errors))
    report.wall_seconds = time.perf_counter() - started
    return report


def _account(report: CollectReport, result: JobResult) -> None:
    job = result.job
    if not result.ok:
        what = "worker died" if result.crashed else "error"
        report.errors.append(f"{job}: {what}: {result.error}")
        logger.error("episode lost: %s", report.errors[-1])
        return
    value = result.value
    if "setup_failed" in value:
        report.setup_failures[job.folder] += 1
        return
    report.episodes[job.folder] += 1
    report.successes[job.folder] += bool(value["success"])
    report.steps += int(value["steps"])
    report.sim_seconds += float(value["sim_seconds"])


def collect(
    root: str | Path,
    skills: Sequence[str] = ("all",),
    episodes: int = 10,
    workers: int | None = None,
    seed_start: int = TRAIN_SEED_START,
    progress: bool = True,
    registry: Registry | None = None,
) -> CollectReport:
    """Collect ``episodes`` demonstrations of each of ``skills`` into ``root`` (see the module doc)."""
    jobs = skill_jobs(registry or load_registry(), skills, episodes, seed_start)
    return _collect(Path(root), jobs, _skill_worker, _run_skill_job, workers, "collect", progress)


def collect_tasks(
    root: str | Path,
    tasks: Sequence[str],
    episodes: int = 10,
    workers: int | None = None,
    seed_start: int = TASK_SEED_START,
    progress: bool = True,
) -> CollectReport:
    """Whole-task demonstrations (the classifier's crowded containers), ``episodes`` per task."""
    from meta_robot.planning import load_tasks

    known = load_tasks(load_registry())
    names = list(known) if list(tasks) == ["all"] else list(tasks)
    unknown = [t for t in names if t not in known]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; tasks: {', '.join(known)}")
    jobs = [TaskJob(t, seed_start + i) for i in range(episodes) for t in names]
    return _collect(Path(root), jobs, _task_worker, _run_task_job, workers, "collect tasks", progress)
