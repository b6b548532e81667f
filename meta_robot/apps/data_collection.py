"""``meta-robot record``: collect demonstrations of a skill in sim through the ROS graph.

Starts the sim bridge, the teleop node (device ``topic``), the scripted operator and the recorder as
separate processes. For every episode: reset the sim to a new seed, bring about the skill's
preconditions by running the registry skills that achieve them (not recorded), open an episode,
have the scripted operator demonstrate the skill, and close the episode with the success label the
registry's post-conditions give on privileged state.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meta_robot_interfaces.action import ExecuteSkill

from meta_robot.apps.sim_session import sim_session
from meta_robot.ros.graph import sim_graph
from meta_robot.skills.episode_plan import argument_cycle, plan_episode
from meta_robot.skills.registry import load_registry

logger = logging.getLogger(__name__)


@dataclass
class RecordReport:
    skill: str
    episodes: int = 0
    successes: int = 0
    setup_failures: int = 0
    paths: list[str] = field(default_factory=list)
    by_arguments: dict[str, list[int]] = field(default_factory=dict)  # "pick(red_cube)" -> [ok, total]

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0


def record(
    skills: list[str],
    episodes: int,
    out_dir: Path,
    arguments: list[str] | None = None,
    seed_start: int = 1000,
    camera_rate: float = 15.0,
    real_time_factor: float = 1.0,
    log_dir: Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[RecordReport]:
    """Record ``episodes`` demonstrations of each skill under ``out_dir``; return per-skill reports."""
    from tqdm import tqdm

    registry = load_registry()
    for name in skills:
        registry.skill(name)  # unknown skills fail before anything starts
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = sim_graph(
        seed=seed_start,
        real_time_factor=real_time_factor,
        bridge_parameters={"camera_rate": camera_rate},
        scripted_operator=True,
        recorder_dir=str(out_dir.resolve()),
    )
    reports = []
    with sim_session(specs, "meta_robot_record", log_dir, recorder=True) as session:
        seeds = itertools.count(seed_start)
        for name in skills:
            report = RecordReport(name)
            reports.append(report)
            groundings = argument_cycle(registry, name, arguments)
            bar = tqdm(total=episodes, desc=f"record {name}", unit="ep", disable=not progress)
            while report.episodes < episodes:
                session.check_running()
                skill, seed = next(groundings), next(seeds)
                plan = plan_episode(registry, skill)
                session.reset(plan.scenario, seed)
                if not session.set_up(plan):
                    report.setup_failures += 1
                    logger.warning("seed %d: could not set up %s; next seed", seed, skill)
                    continue
                with session.recording(skill, seed, task=str(skill)):
                    result = session.run_skill(skill)
                success = result.outcome == ExecuteSkill.Result.SUCCEEDED
                report.paths.append(session.stop_episode(success, result.message))
                report.episodes += 1
                report.successes += success
                tally = report.by_arguments.setdefault(str(skill), [0, 0])
                tally[0] += success
                tally[1] += 1
                bar.update(1)
                bar.set_postfix(success=f"{report.success_rate:.0%}")
            bar.close()
            echo(
                f"{name}: {report.successes}/{report.episodes} succeeded ({report.success_rate:.1%}); "
                f"{report.setup_failures} seeds skipped (set-up failed); "
                + ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in report.by_arguments.items())
            )
    return reports
