"""A learned policy rolled out in the engine's workers: fast in-process evaluation, and DAgger data.

Each worker loads the policy checkpoint once (through :func:`~meta_robot.learning.policy.load_policy`,
the policy server's own loader and interface) and runs a group of episodes side by side, one batched
:meth:`Policy.act` per control step for the group. Every step goes through the same safety layer as
on the graph's driver; success is the graph referee's rule (post-conditions held for 0.5 s before the
skill's timeout). With ``root`` set the rollouts are stored as episodes whose actions are the shadow
expert's labels: DAgger's aggregated data, and the classifier's hard negatives.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meta_robot.core.observation import IMAGE_SIZE
from meta_robot.engine.collect import SkillJob, skill_jobs
from meta_robot.engine.store import read_episode, write_episode
from meta_robot.engine.workers import WorkerPool, default_workers
from meta_robot.learning.eval_report import EpisodeResult, SkillEvalReport, write_report
from meta_robot.skills.registry import Registry, load_registry

HELD_OUT_SEED_START = 100_000  # as the graph evaluation: never a training seed


@dataclass(frozen=True)
class LearnerSettings:
    policy: str  # checkpoint path
    root: str | None = None  # where to store the rollouts (None: evaluation only)
    source: str = "eval"
    round: int = 0
    expert_share: float = 0.0
    image_size: tuple[int, int] = IMAGE_SIZE
    device: str = "cpu"


@dataclass
class LearnerOutcome:
    job: SkillJob
    success: bool
    steps: int
    sim_seconds: float
    setup_failed: bool = False
    error: str = ""


@dataclass
class LearnerReport:
    """Per ground skill: successes / episodes, and what failed to run."""

    outcomes: list[LearnerOutcome] = field(default_factory=list)
    wall_seconds: float = 0.0

    def counts(self) -> dict[str, tuple[int, int]]:
        """ "(skill args)" -> (successes, episodes), set-up failures and errors left out."""
        tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for o in self.outcomes:
            if o.setup_failed or o.error:
                continue
            key = " ".join((o.job.skill, *o.job.arguments))
            tally[key][0] += o.success
            tally[key][1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(tally.items())}

    def by_skill(self) -> dict[str, tuple[int, int]]:
        tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for key, (ok, n) in self.counts().items():
            skill = key.split()[0]
            tally[skill][0] += ok
            tally[skill][1] += n
        return {k: (v[0], v[1]) for k, v in sorted(tally.items())}

    @property
    def problems(self) -> list[LearnerOutcome]:
        return [o for o in self.outcomes if o.setup_failed or o.error]


def _init_worker(settings: LearnerSettings) -> dict[str, Any]:
    from meta_robot.learning.policy import load_policy

    policy = load_policy(settings.policy, settings.device)
    sim_size = tuple(policy.image_size) if policy.image_size else settings.image_size
    return {"policy": policy, "settings": settings, "sims": [], "image_size": sim_size}


def _run_group(state: dict[str, Any], jobs: list[SkillJob]) -> list[LearnerOutcome]:
    from meta_robot.engine.simulation import EngineSim, SetupFailed, run_learners
    from meta_robot.learning.policy import SkillRequest

    policy, settings, sims = state["policy"], state["settings"], state["sims"]
    while len(sims) < len(jobs):  # one workcell (and renderer) per slot of the group, kept for later groups
        sims.append(EngineSim(image_size=state["image_size"]))
    rollouts, outcomes = [], []
    for sim, job in zip(sims, jobs, strict=False):
        ground = sim.registry.ground(job.skill, job.arguments)
        try:
            rollout = sim.start_learner(
                ground, job.seed, settings.expert_share, settings.round, settings.source
            )
        except SetupFailed:
            outcomes.append(LearnerOutcome(job, False, 0, 0.0, setup_failed=True))
            continue
        rollout.policy_state = policy.start(SkillRequest(job.skill, job.arguments))
        rollouts.append((rollout, job))

    def act(running):
        return policy.act([r.policy_state for r in running], [r.observe() for r in running])

    episodes = run_learners([r for r, _ in rollouts], act)
    for (_, job), episode in zip(rollouts, episodes, strict=True):
        if settings.root is not None:
            write_episode(settings.root, episode)
        outcomes.append(LearnerOutcome(job, episode.meta.success, len(episode), episode.meta.duration))
    return outcomes


def run_policy(
    settings: LearnerSettings,
    jobs: Sequence[SkillJob],
    workers: int | None = None,
    group: int = 4,
    progress: bool = True,
    desc: str = "rollouts",
) -> LearnerReport:
    """Roll ``settings.policy`` out on ``jobs`` in ``workers`` processes, ``group`` episodes batched
    per worker; a worker that crashes loses only the episodes of its group (reported as errors)."""
    from tqdm import tqdm

    Path(settings.policy).stat()  # a missing checkpoint fails here, not in every worker
    report = LearnerReport()
    if settings.root is not None:  # rollouts stored by an earlier, interrupted run count as they are
        root = Path(settings.root)
        done = [j for j in jobs if j.stored(root, settings.source, settings.round)]
        for job in done:
            episode = read_episode(job.path(root, settings.source, settings.round))
            report.outcomes.append(
                LearnerOutcome(job, episode.meta.success, len(episode), episode.meta.duration)
            )
        jobs = [j for j in jobs if j not in set(done)]
    groups = [list(jobs[i : i + group]) for i in range(0, len(jobs), max(1, group))]
    started = time.perf_counter()
    n = min(workers or default_workers(), max(1, len(groups)))
    with (
        WorkerPool(n, _init_worker, settings, _run_group) as pool,
        tqdm(total=len(jobs), desc=desc, unit="ep", disable=not progress) as bar,
    ):
        for result in pool.map(groups):
            if result.ok:
                report.outcomes.extend(result.value)
            else:
                why = "worker died" if result.crashed else "error"
                report.outcomes.extend(
                    LearnerOutcome(j, False, 0, 0.0, error=f"{why}: {result.error}") for j in result.job
                )
            bar.update(len(result.job))
            ok = sum(o.success for o in report.outcomes)
            bar.set_postfix(success=f"{ok}/{len(report.outcomes)}")
    report.wall_seconds = time.perf_counter() - started
    return report


def evaluate_in_process(
    policy: str,
    skills: Sequence[str] = ("all",),
    episodes: int = 200,
    seed_start: int = HELD_OUT_SEED_START,
    workers: int | None = None,
    group: int = 4,
    progress: bool = True,
    registry: Registry | None = None,
    keep: Path | None = None,
) -> LearnerReport:
    """``meta-robot eval skill ... --in-process``: held-out seeds in the engine's workers; ``keep``
    stores the rollouts there as engine episodes (to watch with :mod:`meta_robot.engine.video`)."""
    registry = registry or load_registry()
    jobs = skill_jobs(registry, skills, episodes, seed_start)
    settings = LearnerSettings(policy, root=str(keep) if keep is not None else None)
    return run_policy(settings, jobs, workers, group, progress, desc="eval in-process")


def skill_reports(report: LearnerReport, policy: str) -> dict[str, SkillEvalReport]:
    """The in-process outcomes as the graph evaluation's per-skill reports (same YAML and plot)."""
    out: dict[str, SkillEvalReport] = {}
    for o in report.outcomes:
        entry = out.setdefault(o.job.skill, SkillEvalReport(o.job.skill, policy))
        if o.setup_failed or o.error:
            entry.setup_failures += 1
            continue
        ground = f"({' '.join((o.job.skill, *o.job.arguments))})"
        outcome = "succeeded" if o.success else "timed_out"
        entry.episodes.append(EpisodeResult(o.job.seed, ground, o.success, outcome, o.sim_seconds))
    return out


def write_learner_report(report: LearnerReport, out_dir: Path, policy: str) -> str:
    """``<skill>.yaml`` and ``<skill>.png`` per skill under ``out_dir``; returns the summary lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for skill_report in skill_reports(report, policy).values():
        write_report(skill_report, out_dir)
        lines.append(skill_report.summary())
    lines.append(f"{len(report.outcomes)} episodes in {report.wall_seconds:.0f} s")
    return "\n".join(lines)
