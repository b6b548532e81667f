"""One sim session for every command that drives a sim graph (record, eval, replay, task evaluation and
recording, the demo).

:func:`sim_session` keeps DDS on loopback with a private domain, starts the graph's processes, spins a
background node and waits for the services the command needs. While it waits, and whenever a command
calls :meth:`SimSession.check_running`, a node that died is reported at once with its name, exit code
and last log lines (:class:`~meta_robot.ros.launcher.GraphProcesses`), not as a service that never came.
Leaving the block (normally, on an error, or on SIGTERM/SIGHUP/Ctrl-C) stops every node it started.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from meta_robot_interfaces.action import ExecuteSkill
from meta_robot_interfaces.srv import ResetSim, StartEpisode, StopEpisode
from rclpy.action import ActionClient

from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.environment import apply_loopback_environment
from meta_robot.ros.graph import NodeSpec
from meta_robot.ros.launcher import GraphProcesses
from meta_robot.skills.episode_plan import EpisodePlan
from meta_robot.skills.registry import GroundSkill

logger = logging.getLogger(__name__)

SETTLE = 0.3  # s after a reset before the first skill: the new state reaches every node


def wait_for(future: Any, timeout: float, what: str) -> Any:
    """The result of an rclpy future (spun by the background node), or TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while not future.done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer from {what} within {timeout:.0f} s")
        time.sleep(0.01)
    return future.result()


def call(client: Any, request: Any, timeout: float = 30.0) -> Any:
    """Call a service and wait for its response."""
    return wait_for(client.call_async(request), timeout, client.srv_name)


class SimSession:
    """A running sim graph, a background node on it, and clients of the sim's services: the scripted
    operator's skills (``operator``) and the recorder's episodes (``recorder``) when asked for."""

    def __init__(
        self,
        graph: GraphProcesses,
        ros: BackgroundNode,
        operator: bool = True,
        recorder: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.graph, self.ros, self.node = graph, ros, ros.node
        self.reset_client = self.node.create_client(ResetSim, "sim/reset")
        self.start_client = self.node.create_client(StartEpisode, "recorder/start_episode")
        self.stop_client = self.node.create_client(StopEpisode, "recorder/stop_episode")
        self.skill_client = ActionClient(self.node, ExecuteSkill, "scripted_operator/execute_skill")
        self.wait_until("sim/reset", lambda: self.reset_client.wait_for_service(timeout_sec=1.0), timeout)
        if operator:
            ready = lambda: self.skill_client.wait_for_server(timeout_sec=1.0)  # noqa: E731
            self.wait_until("scripted_operator/execute_skill", ready, timeout)
        if recorder:
            self.wait_until(
                "recorder/start_episode", lambda: self.start_client.wait_for_service(timeout_sec=1.0), timeout
            )

    # -- the graph --------------------------------------------------------------------------------
    def check_running(self) -> None:
        """Raise, naming the node, its exit code and last log lines, if a graph process has died."""
        self.graph.check_running()

    def wait_until(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``ready`` until it holds; a dead node is reported at once, a slow one after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not ready():
            self.check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not appear within {timeout:.0f} s")
            time.sleep(0.05)

    def action_client(self, action_type: Any, name: str, timeout: float = 120.0) -> ActionClient:
        """A client of the graph's action ``name``, once its server is up."""
        client = ActionClient(self.node, action_type, name)
        self.wait_until(name, lambda: client.wait_for_server(timeout_sec=1.0), timeout)
        return client

    # -- the sim and the scripted operator ----------------------------------------------------------
    def reset(self, scenario: str, seed: int, settle: float = SETTLE) -> None:
        """Reset the sim to ``scenario`` drawn from ``seed``, then let the new state reach every node."""
        response = call(self.reset_client, ResetSim.Request(scenario=scenario, seed=seed))
        if not response.success:
            raise RuntimeError(f"sim reset failed: {response.message}")
        time.sleep(settle)

    def run_skill(self, skill: GroundSkill) -> ExecuteSkill.Result:
        """Have the scripted operator execute ``skill``; its result (the outcome says how it went)."""
        goal = ExecuteSkill.Goal(skill=skill.name, arguments=list(skill.arguments))
        handle = wait_for(self.skill_client.send_goal_async(goal), 30.0, "the scripted operator (goal)")
        if not handle.accepted:
            raise RuntimeError(f"the scripted operator refused {skill}")
        timeout = skill.spec.timeout * 4 + 30.0
        return wait_for(handle.get_result_async(), timeout, f"the scripted operator ({skill})").result

    def set_up(self, plan: EpisodePlan) -> bool:
        """Run the skills that bring about an episode's preconditions; False at the first that fails."""
        return all(self.run_skill(s).outcome == ExecuteSkill.Result.SUCCEEDED for s in plan.setup)

    # -- the recorder -------------------------------------------------------------------------------
    def start_episode(
        self, skill: GroundSkill | None, seed: int, task: str, operator_name: str = "scripted"
    ) -> str:
        """Open an episode of ``skill`` (None: a whole task, several skills); returns its id."""
        request = StartEpisode.Request(
            task=task,
            skill=skill.name if skill else "",
            arguments=list(skill.arguments) if skill else [],
            seed=seed,
            operator_name=operator_name,
        )
        response = call(self.start_client, request)
        if not response.success:
            raise RuntimeError(f"recorder refused to start an episode: {response.message}")
        return response.episode_id

    def discard_episode(self, notes: str) -> None:
        call(self.stop_client, StopEpisode.Request(discard=True, notes=notes), timeout=10.0)

    @contextmanager
    def recording(
        self, skill: GroundSkill | None, seed: int, task: str, operator_name: str = "scripted"
    ) -> Iterator[str]:
        """Open an episode for the block (yields its id); close it with :meth:`stop_episode` after.
        An exception inside (Ctrl-C mid-demonstration) discards it: half an episode is no data."""
        episode_id = self.start_episode(skill, seed, task, operator_name)
        try:
            yield episode_id
        except BaseException:
            try:
                self.discard_episode("recording interrupted")
            except (TimeoutError, RuntimeError) as exc:  # the recorder got the Ctrl-C too
                logger.warning(
                    "could not discard the interrupted episode %s (%s); it stays unfinished "
                    "(`meta-robot recover` makes it readable)",
                    episode_id,
                    exc,
                )
            raise

    def stop_episode(self, success: bool, notes: str) -> str:
        """Close the open episode with its outcome; returns the episode's path."""
        outcome = StopEpisode.Request.OUTCOME_SUCCESS if success else StopEpisode.Request.OUTCOME_FAILURE
        response = call(self.stop_client, StopEpisode.Request(outcome=outcome, notes=notes))
        if not response.success:
            raise RuntimeError(f"recorder could not finish the episode: {response.message}")
        return response.path


@contextmanager
def sim_session(
    specs: Sequence[NodeSpec],
    node_name: str,
    log_dir: Path | None = None,
    operator: bool = True,
    recorder: bool = False,
    timeout: float = 60.0,
) -> Iterator[SimSession]:
    """Start ``specs`` on loopback DDS (a private domain unless ROS_DOMAIN_ID is set), node logs under
    ``log_dir``, and yield the session once the services it needs are up; every node stops on leaving."""
    env = apply_loopback_environment()
    with GraphProcesses(specs, env, log_dir=log_dir) as graph, BackgroundNode(node_name) as ros:
        yield SimSession(graph, ros, operator=operator, recorder=recorder, timeout=timeout)
