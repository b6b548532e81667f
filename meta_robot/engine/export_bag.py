"""Engine episodes as rosbag2 recordings: the episode folders the ROS recorder writes on the robot.

Each engine episode becomes ``<out>/<episode id>/`` (MCAP + ``episode.yaml``), written by the
recorder's own :class:`~meta_robot.recording.writer.EpisodeWriter`, with the topics a recording of
the sim graph holds at the control rate: ``/joint_states``, ``/gripper/state``, ``/ee_pose``, both
cameras' ``color/image_raw`` rendered from the stored states at the sim bridge's camera size, the
executed ``/robot_command`` (absolute targets, issued just after each step's observation) and, in a
DAgger rollout, ``/teleop/intervention`` where the expert took over. So the whole recorded-episode
tool chain (``dataset info|verify|export``, training, replay) reads generated data unchanged, and
resampling an export at the control rate gives back the engine episode's states and actions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meta_robot.core.observation import CAMERAS, NUM_JOINTS, color_topic
from meta_robot.engine.store import EngineEpisode, episode_files, read_episode
from meta_robot.recording.episode import EpisodeMetadata, software_info
from meta_robot.recording.typestore import typestore
from meta_robot.recording.writer import EpisodeWriter
from meta_robot.safety.limits import SafetyLimits
from meta_robot.sim.workcell import ARM_JOINTS, FINGER_JOINTS

logger = logging.getLogger(__name__)

START_NS = 1_000_000_000  # ROS time of an exported episode's first step (sim time starts near 0)
COMMAND_DELAY_NS = 1_000_000  # a step's command follows its observation by 1 ms, as a policy's does
TOPICS = {
    "/joint_states": "sensor_msgs/msg/JointState",
    "/gripper/state": "meta_robot_interfaces/msg/GripperState",
    "/ee_pose": "geometry_msgs/msg/PoseStamped",
    "/robot_command": "meta_robot_interfaces/msg/ArmCommand",
    "/teleop/intervention": "meta_robot_interfaces/msg/Intervention",
    **{"/" + color_topic(camera): "sensor_msgs/msg/Image" for camera in CAMERAS},
}


@dataclass
class BagExportReport:
    episodes: list[Path] = field(default_factory=list)
    skipped: int = 0  # already exported
    messages: int = 0
    wall_seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"exported {len(self.episodes)} episodes ({self.messages} messages) in "
            f"{self.wall_seconds:.0f} s; {self.skipped} were there already"
        )


class _Messages:
    """Builds the ROS messages of one step with rosbags' types (no ROS installation needed)."""

    def __init__(self, base_frame: str) -> None:
        self.store = typestore()
        self.types = self.store.types
        self.base_frame = base_frame

    def serialize(self, msg: Any, msgtype: str) -> bytes:
        return bytes(self.store.serialize_cdr(msg, msgtype))

    def header(self, ns: int, frame: str) -> Any:
        stamp = self.types["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        return self.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)

    def pose(self, values: np.ndarray) -> Any:
        t = self.types
        p, q = np.asarray(values[:3], float), np.asarray(values[3:7], float)
        return t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=p[0], y=p[1], z=p[2]),
            orientation=t["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
        )

    def joints(self, ns: int, state: np.ndarray) -> Any:
        fingers = [float(state[NUM_JOINTS]) / 2] * len(FINGER_JOINTS)
        position = np.array([*state[:NUM_JOINTS], *fingers], np.float64)
        return self.types["sensor_msgs/msg/JointState"](
            header=self.header(ns, self.base_frame),
            name=[*ARM_JOINTS, *FINGER_JOINTS],
            position=position,
            velocity=np.zeros(0),
            effort=np.zeros(0),
        )

    def gripper(self, ns: int, width: float, max_width: float) -> Any:
        return self.types["meta_robot_interfaces/msg/GripperState"](
            header=self.header(ns, self.base_frame), width=float(width), max_width=max_width, grasped=False
        )

    def ee_pose(self, ns: int, state: np.ndarray) -> Any:
        return self.types["geometry_msgs/msg/PoseStamped"](
            header=self.header(ns, self.base_frame), pose=self.pose(state[NUM_JOINTS + 1 :])
        )

    def command(self, ns: int, action: np.ndarray, source: str) -> Any:
        return self.types["meta_robot_interfaces/msg/ArmCommand"](
            header=self.header(ns, self.base_frame),
            mode=0,
            pose=self.pose(action[:7]),
            gripper_width=float(action[7]),
            source=source,
        )

    def image(self, ns: int, camera: str, pixels: np.ndarray) -> Any:
        h, w = pixels.shape[:2]
        return self.types["sensor_msgs/msg/Image"](
            header=self.header(ns, f"{camera}_color_optical_frame"),
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=w * 3,
            data=np.ascontiguousarray(pixels, np.uint8).reshape(-1),
        )

    def intervention(self, ns: int, active: bool) -> Any:
        return self.types["meta_robot_interfaces/msg/Intervention"](
            header=self.header(ns, self.base_frame),
            active=bool(active),
            device="scripted_expert",
            reason="DAgger: the expert executes this step" if active else "back to the learner",
        )


def export_episode(
    episode: EngineEpisode, out: Path, renderer: Any, messages: _Messages, max_width: float
) -> tuple[Path, int]:
    """Write one engine episode as a recording under ``out``; returns its folder and message count.
    ``renderer`` is a :class:`~meta_robot.sim.rendering.WorkcellRenderer` on a workcell of the same
    model (frames at the bridge's camera size, as the graph publishes them)."""
    from meta_robot.sim import snapshot

    meta = episode.meta
    period = round(1e9 / meta.fps)
    metadata = EpisodeMetadata(
        episode_id=meta.episode_id,
        task=" ".join((meta.skill, *meta.arguments)),
        skill=meta.skill,
        arguments=list(meta.arguments),
        seed=meta.seed,
        operator="scripted" if meta.source == "expert" else f"{meta.source} (data engine)",
        start_time_ns=START_NS,
        software=software_info(),
        notes=f"exported from the data engine (source {meta.source}, scenario {meta.scenario})",
    )
    writer = EpisodeWriter(out, metadata)
    source = "scripted_operator" if meta.source == "expert" else "policy"
    expert_acting = episode.expert_takeover
    model, data = renderer.wc.model, renderer.wc.data
    try:
        for t in range(len(episode)):
            ns = START_NS + t * period
            state = episode.state[t]
            for topic, msg in (
                ("/joint_states", messages.joints(ns, state)),
                ("/gripper/state", messages.gripper(ns, state[NUM_JOINTS], max_width)),
                ("/ee_pose", messages.ee_pose(ns, state)),
            ):
                writer.write(topic, TOPICS[topic], messages.serialize(msg, TOPICS[topic]), ns)
            snapshot.restore(model, data, episode.physics[t])
            for camera in CAMERAS:
                topic = "/" + color_topic(camera)
                msg = messages.image(ns, camera, renderer.render(camera).color)
                writer.write(topic, TOPICS[topic], messages.serialize(msg, TOPICS[topic]), ns)
            command_ns = ns + COMMAND_DELAY_NS
            if expert_acting[t] != (expert_acting[t - 1] if t else False):  # control changes hands
                topic = "/teleop/intervention"  # with the step's command: it is whose command runs
                msg = messages.intervention(command_ns, bool(expert_acting[t]))
                writer.write(topic, TOPICS[topic], messages.serialize(msg, TOPICS[topic]), command_ns)
                writer.intervention(bool(expert_acting[t]), command_ns, "scripted_expert")
            topic = "/robot_command"
            msg = messages.command(command_ns, episode.action[t], source)
            writer.write(topic, TOPICS[topic], messages.serialize(msg, TOPICS[topic]), command_ns)
    except BaseException:
        writer.discard()
        raise
    # The state one period after the last step's command, so resampling keeps that step (a step
    # needs the next one to begin).
    end = START_NS + len(episode) * period + COMMAND_DELAY_NS
    for topic, msg in (
        ("/joint_states", messages.joints(end, episode.state[-1])),
        ("/ee_pose", messages.ee_pose(end, episode.state[-1])),
    ):
        writer.write(topic, TOPICS[topic], messages.serialize(msg, TOPICS[topic]), end)
    folder = writer.finish(meta.outcome, end)
    return folder, writer.messages


def export_rosbag(
    root: str | Path,
    out: str | Path,
    skills: Iterable[str] | None = None,
    only_successful: bool = False,
    progress: bool = True,
) -> BagExportReport:
    """``meta-robot dataset export ROOT --format rosbag2``: every engine episode under ``root`` (not
    yet exported) as a recording under ``out``."""
    from tqdm import tqdm

    from meta_robot.sim.rendering import WorkcellRenderer
    from meta_robot.sim.workcell import Workcell

    out = Path(out)
    report = BagExportReport()
    started = time.perf_counter()
    files = episode_files(root, list(skills) if skills is not None else None)
    workcell = Workcell()
    renderer = WorkcellRenderer(workcell)
    limits = SafetyLimits()
    messages = _Messages(limits.base_frame)
    try:
        for path in tqdm(files, desc="export rosbag2", unit="ep", disable=not progress):
            episode = read_episode(path)
            if (only_successful and not episode.success) or len(episode) == 0:
                continue
            if (out / episode.episode_id).exists():
                report.skipped += 1
                continue
            folder, count = export_episode(episode, out, renderer, messages, limits.gripper_max_width)
            report.episodes.append(folder)
            report.messages += count
    finally:
        renderer.close()
    report.wall_seconds = time.perf_counter() - started
    logger.info(report.summary())
    return report
