"""``meta-robot eval skill NAME``: a learned skill's success rate in sim, through the real nodes.

Starts the sim graph with the policy server (and the success classifier, if asked) as separate
processes, plus the scripted operator that only sets scenes up. For every held-out seed: reset the
sim, bring about the skill's preconditions with the scripted operator (not part of the score), send
the skill to ``policy/execute_skill``, and let a referee judge it on the simulator's privileged state
(evaluation is the one place privileged state may decide anything): the skill succeeds when its
registry post-conditions hold for ``hold`` seconds before its timeout. Reports the success rate with
a 95 % Wilson interval per grounding and overall, and writes a plot and a YAML of every episode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.action import ExecuteSkill
from meta_robot_interfaces.msg import GripperState, ObjectStates
from rclpy.action import ActionClient

from meta_robot.apps.sim_session import sim_session, wait_for
from meta_robot.learning.eval_report import EpisodeResult, SkillEvalReport, write_report
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.graph import sim_graph
from meta_robot.ros.world_messages import world_from_messages
from meta_robot.skills.episode_plan import argument_cycle, plan_episode
from meta_robot.skills.registry import GroundSkill, load_registry
from meta_robot.skills.world import Grounding, WorldState

logger = logging.getLogger(__name__)

HELD_OUT_SEED_START = 100_000  # recordings use seeds from 1000: evaluation seeds never overlap them
OUTCOMES = {v: k.lower() for k, v in vars(ExecuteSkill.Result).items() if k.isupper() and isinstance(v, int)}


class Referee:
    """Privileged world state from the sim, and whether a skill's post-conditions hold."""

    def __init__(self, ros: BackgroundNode, grounding: Grounding) -> None:
        self.grounding = grounding
        self._lock = threading.Lock()
        self._latest: dict[str, object] = {}
        node = ros.node
        for topic, kind in (
            ("sim/object_states", ObjectStates),
            ("ee_pose", PoseStamped),
            ("gripper/state", GripperState),
        ):
            node.create_subscription(kind, topic, lambda msg, t=topic: self._put(t, msg), 10)

    def _put(self, topic: str, msg: object) -> None:
        with self._lock:
            self._latest[topic] = msg

    def world(self) -> WorldState | None:
        with self._lock:
            objects = self._latest.get("sim/object_states")
            pose = self._latest.get("ee_pose")
            gripper = self._latest.get("gripper/state")
        if objects is None or pose is None or gripper is None:
            return None
        return world_from_messages(objects, pose, gripper)[0]

    def succeeded(self, skill: GroundSkill) -> bool:
        world = self.world()
        return world is not None and self.grounding.succeeded(world, skill)


def run_learned_skill(
    client: ActionClient, referee: Referee, skill: GroundSkill, hold: float = 0.5
) -> tuple[bool, str, str]:
    """Send ``skill`` to the policy server and judge it: (success, server outcome, message). The goal
    is cancelled as soon as the post-conditions have held for ``hold`` s (the arm stops there)."""
    goal = ExecuteSkill.Goal(skill=skill.name, arguments=list(skill.arguments))
    handle = wait_for(client.send_goal_async(goal), 30.0, "the policy server (goal)")
    if not handle.accepted:
        return False, "rejected", "the policy server rejected the goal"
    result_future = handle.get_result_async()
    held_since: float | None = None
    success = False
    deadline = time.monotonic() + skill.spec.timeout * 4 + 30.0
    while not result_future.done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{skill}: the policy server neither finished nor timed out")
        if referee.succeeded(skill):
            held_since = held_since or time.monotonic()
            if time.monotonic() - held_since >= hold and not success:
                success = True
                handle.cancel_goal_async()
        else:
            held_since = None
        time.sleep(0.02)
    result = result_future.result().result
    if not success:
        time.sleep(0.3)  # let the scene settle (an object dropped into the drawer)
        success = referee.succeeded(skill)
    return success, OUTCOMES.get(result.outcome, str(result.outcome)), result.message


def evaluate_skill(
    skill: str,
    episodes: int,
    out_dir: Path,
    policy: str = "goal_conditioned_bc",
    classifier: str | None = None,
    arguments: list[str] | None = None,
    seed_start: int = HELD_OUT_SEED_START,
    real_time_factor: float = 1.0,
    camera_rate: float = 15.0,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> SkillEvalReport:
    """Evaluate ``episodes`` executions of ``skill`` (cycling through its groundings unless
    ``arguments`` fix one) on held-out seeds; results, plot and node logs go to ``out_dir``."""
    from tqdm import tqdm

    registry = load_registry()
    registry.skill(skill)  # an unknown skill fails before anything starts
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = sim_graph(
        seed=seed_start,
        real_time_factor=real_time_factor,
        bridge_parameters={"camera_rate": camera_rate},
        scripted_operator=True,
        policy=policy,
        classifier=classifier,
    )
    report = SkillEvalReport(skill, policy)
    grounding = Grounding(registry)
    with sim_session(specs, "meta_robot_eval", out_dir / "logs" / skill) as session:
        client = session.action_client(ExecuteSkill, "policy/execute_skill", timeout=120.0)
        referee = Referee(session.ros, grounding)
        groundings = argument_cycle(registry, skill, arguments)
        seed = seed_start
        bar = tqdm(total=episodes, desc=f"eval {skill}", unit="ep", disable=not progress)
        while len(report.episodes) < episodes:
            session.check_running()
            ground, seed = next(groundings), seed + 1
            plan = plan_episode(registry, ground)
            session.reset(plan.scenario, seed)
            if not session.set_up(plan):
                report.setup_failures += 1
                continue
            t0 = time.monotonic()
            success, outcome, message = run_learned_skill(client, referee, ground)
            report.episodes.append(
                EpisodeResult(seed, str(ground), success, outcome, time.monotonic() - t0, message)
            )
            bar.update(1)
            bar.set_postfix(success=f"{report.success_rate:.0%}")
        bar.close()
    echo(report.summary())
    write_report(report, out_dir)
    return report
