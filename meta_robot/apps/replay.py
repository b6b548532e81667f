"""``meta-robot replay``: play a recorded episode's robot commands back into the sim.

Resets the sim to the episode's seed and scenario, re-creates the skill's preconditions with the
scripted operator exactly as ``meta-robot record`` did (they were not part of the recording), then
republishes every recorded ``robot_command`` at its recorded pace, re-stamped with the current time,
so the safety layer judges them as fresh commands. Reports where the arm ended against where it
ended in the recording: a check that an episode's actions really reproduce its motion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import ArmCommand
from rclpy.serialization import deserialize_message

from meta_robot.apps.sim_session import sim_session
from meta_robot.dataset.episodes import load_episode, read_messages
from meta_robot.ros.graph import sim_graph
from meta_robot.skills.episode_plan import plan_episode
from meta_robot.skills.registry import load_registry

COMMAND_TOPIC = "/robot_command"
POSE_TOPIC = "/ee_pose"
SETTLE_TIME = 2.0  # s the last command is held after the recorded stream ends


@dataclass
class ReplayReport:
    episode: str
    commands: int
    recorded_final: np.ndarray
    replayed_final: np.ndarray

    @property
    def final_error(self) -> float:
        return float(np.linalg.norm(self.recorded_final - self.replayed_final))

    def __str__(self) -> str:
        return (
            f"replayed {self.commands} commands of {self.episode}: final TCP "
            f"{np.round(self.replayed_final, 3)} vs recorded {np.round(self.recorded_final, 3)} "
            f"({self.final_error * 1000:.1f} mm apart)"
        )


def replay_episode(path: Path, log_dir: Path | None = None) -> ReplayReport:
    episode = load_episode(path)
    meta = episode.metadata
    registry = load_registry()
    plan = plan_episode(registry, registry.ground(meta.skill, list(meta.arguments)))
    commands: list[tuple[int, ArmCommand]] = []
    final_pose = None
    for topic, stamp, raw in read_messages(episode, [COMMAND_TOPIC, POSE_TOPIC], raw=True):
        if topic == COMMAND_TOPIC:
            commands.append((stamp, deserialize_message(raw, ArmCommand)))
        else:
            final_pose = deserialize_message(raw, PoseStamped).pose.position
    if not commands or final_pose is None:
        raise ValueError(f"{path} holds no {COMMAND_TOPIC} or {POSE_TOPIC} messages to replay")
    specs = sim_graph(
        plan.scenario, max(meta.seed, 0), scripted_operator=True, bridge_parameters={"camera_rate": 0.0}
    )
    with sim_session(specs, "meta_robot_replay", log_dir) as session:
        ros = session.ros
        session.reset(plan.scenario, max(meta.seed, 0))
        if not session.set_up(plan):
            raise RuntimeError(f"could not set up {meta.skill} for seed {meta.seed}; nothing replayed")
        publisher = ros.node.create_publisher(ArmCommand, "robot_command", 10)
        latest: list[PoseStamped] = []
        ros.node.create_subscription(PoseStamped, "ee_pose", latest.append, 10)
        t0_recorded, t0 = commands[0][0], time.monotonic()
        for stamp, msg in commands:
            delay = (stamp - t0_recorded) * 1e-9 - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)
            msg.header.stamp = ros.node.get_clock().now().to_msg()
            publisher.publish(msg)
        # Hold the last target, as the operator did, so a sim running slower than the recording
        # (a loaded machine) still gets the arm there before the watchdog would hold it short.
        last = commands[-1][1]
        settle_until = time.monotonic() + SETTLE_TIME
        while time.monotonic() < settle_until:
            last.header.stamp = ros.node.get_clock().now().to_msg()
            publisher.publish(last)
            time.sleep(0.02)
        p = latest[-1].pose.position
    return ReplayReport(
        meta.episode_id,
        len(commands),
        np.array([final_pose.x, final_pose.y, final_pose.z]),
        np.array([p.x, p.y, p.z]),
    )
