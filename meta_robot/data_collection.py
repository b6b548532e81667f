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
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meta_robot_interfaces.action import ExecuteSkill
from meta_robot_interfaces.srv import ResetSim, StartEpisode, StopEpisode
from rclpy.action import ActionClient

from meta_robot.graph import sim_graph
from meta_robot.launcher import GraphProcesses
from meta_robot.nodes.background import BackgroundNode
from meta_robot.ros_env import apply_loopback_environment
from meta_robot.skills.episode_plan import argument_cycle, plan_episode
from meta_robot.skills.registry import GroundSkill, load_registry

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


class RecordSession:
    """Clients of the sim, the scripted operator and the recorder, on one background node."""

    def __init__(
        self,
        ros: BackgroundNode,
        timeout: float = 60.0,
        require_recorder: bool = True,
        graph: GraphProcesses | None = None,
    ) -> None:
        """Wait for the services; with ``graph``, a node of it that died meanwhile is reported at once
        (its name, exit code and last log lines) instead of as a timeout."""
        node = ros.node
        self.node = node
        self.reset_client = node.create_client(ResetSim, "sim/reset")
        self.start_client = node.create_client(StartEpisode, "recorder/start_episode")
        self.stop_client = node.create_client(StopEpisode, "recorder/stop_episode")
        self.skill_client = ActionClient(node, ExecuteSkill, "scripted_operator/execute_skill")
        needed = [
            ("sim/reset", lambda: self.reset_client.wait_for_service(timeout_sec=1.0)),
            ("scripted_operator/execute_skill", lambda: self.skill_client.wait_for_server(timeout_sec=1.0)),
        ]
        if require_recorder:
            needed.append(
                ("recorder/start_episode", lambda: self.start_client.wait_for_service(timeout_sec=1.0))
            )
        for name, ready in needed:
            deadline = time.monotonic() + timeout
            while not ready():
                if graph is not None:
                    graph.check_running()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not appear within {timeout:.0f} s")

    def _call(self, client, request, timeout: float = 30.0):
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer from {client.srv_name} within {timeout:.0f} s")
            time.sleep(0.01)
        return future.result()

    def reset(self, scenario: str, seed: int) -> None:
        response = self._call(self.reset_client, ResetSim.Request(scenario=scenario, seed=seed))
        if not response.success:
            raise RuntimeError(f"sim reset failed: {response.message}")

    def run_skill(self, skill: GroundSkill) -> ExecuteSkill.Result:
        goal = ExecuteSkill.Goal(skill=skill.name, arguments=list(skill.arguments))
        future = self.skill_client.send_goal_async(goal)
        while not future.done():
            time.sleep(0.01)
        handle = future.result()
        if not handle.accepted:
            raise RuntimeError(f"the scripted operator refused {skill}")
        result_future = handle.get_result_async()
        deadline = time.monotonic() + skill.spec.timeout * 4 + 30.0
        while not result_future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{skill} did not finish")
            time.sleep(0.02)
        return result_future.result().result

    def start_episode(self, skill: GroundSkill | None, seed: int, task: str) -> str:
        """Open an episode of ``skill`` (None: a whole task, several skills)."""
        request = StartEpisode.Request(
            task=task,
            skill=skill.name if skill else "",
            arguments=list(skill.arguments) if skill else [],
            seed=seed,
            operator_name="scripted",
        )
        response = self._call(self.start_client, request)
        if not response.success:
            raise RuntimeError(f"recorder refused to start an episode: {response.message}")
        return response.episode_id

    def discard_episode(self, notes: str) -> None:
        self._call(self.stop_client, StopEpisode.Request(discard=True, notes=notes), timeout=10.0)

    def stop_episode(self, success: bool, notes: str) -> str:
        outcome = StopEpisode.Request.OUTCOME_SUCCESS if success else StopEpisode.Request.OUTCOME_FAILURE
        response = self._call(self.stop_client, StopEpisode.Request(outcome=outcome, notes=notes))
        if not response.success:
            raise RuntimeError(f"recorder could not finish the episode: {response.message}")
        return response.path


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
    apply_loopback_environment()
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = sim_graph(
        seed=seed_start,
        real_time_factor=real_time_factor,
        bridge_parameters={"camera_rate": camera_rate},
        scripted_operator=True,
        recorder_dir=str(out_dir.resolve()),
    )
    reports = []
    with (
        GraphProcesses(specs, os.environ, log_dir=log_dir) as graph,
        BackgroundNode("meta_robot_record") as ros,
    ):
        session = RecordSession(ros, graph=graph)
        seeds = itertools.count(seed_start)
        for name in skills:
            report = RecordReport(name)
            reports.append(report)
            groundings = argument_cycle(registry, name, arguments)
            bar = tqdm(total=episodes, desc=f"record {name}", unit="ep", disable=not progress)
            while report.episodes < episodes:
                graph.check_running()
                skill, seed = next(groundings), next(seeds)
                plan = plan_episode(registry, skill)
                session.reset(plan.scenario, seed)
                time.sleep(0.3)  # the first state after the reset reaches every node
                if not all(session.run_skill(s).outcome == ExecuteSkill.Result.SUCCEEDED for s in plan.setup):
                    report.setup_failures += 1
                    logger.warning("seed %d: could not set up %s; next seed", seed, skill)
                    continue
                session.start_episode(skill, seed, task=str(skill))
                try:
                    result = session.run_skill(skill)
                except BaseException:  # interrupted mid-demonstration: the half episode is no data
                    try:
                        session.discard_episode("recording interrupted")
                    except (TimeoutError, RuntimeError) as exc:  # the recorder got the Ctrl-C too
                        logger.warning(
                            "could not discard the interrupted episode (%s); it stays unfinished under %s "
                            "(`meta-robot recover` makes it readable)",
                            exc,
                            out_dir,
                        )
                    raise
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
