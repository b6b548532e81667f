"""The recorder: episodes of raw messages as rosbag2 (MCAP) folders with episode metadata.

Subscribes with ``raw=True`` (serialized CDR straight into the bag, no deserialization) to the
configured topics and hands every message to an :class:`EpisodeRecorder`, whose writer thread owns
the disk. Episodes open and close through the services ``recorder/start_episode`` (StartEpisode)
and ``recorder/stop_episode`` (StopEpisode), or from an operator device via ``teleop/episode_event``
(EpisodeEvent). ``teleop/intervention`` spans go into the metadata; the latest CameraInfo of each
camera becomes its calibration block. ``recorder/status`` (EpisodeStatus, latched) is published on
every change and at ``status_rate`` while recording. At start-up episodes left open by a crash are
recovered; at shutdown an open episode is finished with outcome unknown.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from meta_robot_interfaces.msg import EpisodeEvent, EpisodeStatus, Intervention
from meta_robot_interfaces.srv import StartEpisode, StopEpisode
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription

from meta_robot.core.observation import CAMERA_NAMESPACES, CAMERAS
from meta_robot.recording.disk import GIB, DiskGuard, DiskSpaceError
from meta_robot.recording.episode import EpisodeMetadata, make_episode_id, software_info
from meta_robot.recording.recover import recover_open_episodes
from meta_robot.recording.typestore import typestore
from meta_robot.recording.writer import MIB, EpisodeRecorder, WriterOptions, calibration_from_camera_info
from meta_robot.ros.camera_publisher import camera_topics
from meta_robot.ros.driver_interface import LATCHED
from meta_robot.ros.entry import run_node
from meta_robot.ros.parameters import declare_config

CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
IMAGE = "sensor_msgs/msg/Image"
DEFAULT_TOPICS = (
    "joint_states:sensor_msgs/msg/JointState",
    "ee_pose:geometry_msgs/msg/PoseStamped",
    "gripper/state:meta_robot_interfaces/msg/GripperState",
    "robot_command:meta_robot_interfaces/msg/ArmCommand",
    "safety/refusals:std_msgs/msg/String",
    "safety/estop_active:std_msgs/msg/Bool",
    *(
        f"{topic}:{CAMERA_INFO if key.endswith('info') else IMAGE}"
        for camera in CAMERAS
        for key, topic in camera_topics(CAMERA_NAMESPACES[camera]).items()
    ),
    "teleop/operator_input:meta_robot_interfaces/msg/OperatorInput",
    "teleop/intervention:meta_robot_interfaces/msg/Intervention",
    "teleop/episode_event:meta_robot_interfaces/msg/EpisodeEvent",
    "skill_status:meta_robot_interfaces/msg/SkillStatus",
    "sim/object_states:meta_robot_interfaces/msg/ObjectStates",
)
OUTCOMES = {StopEpisode.Request.OUTCOME_SUCCESS: "success", StopEpisode.Request.OUTCOME_FAILURE: "failure",
            StopEpisode.Request.OUTCOME_UNKNOWN: "unknown"}  # fmt: skip


@dataclass(frozen=True)
class RecorderConfig:
    """The recorder's parameters (declared once, documented here)."""

    output_dir: str = field(default="data/episodes", metadata={"doc": "episodes root (relative: to the cwd)"})
    topics: tuple[str, ...] = field(
        default=DEFAULT_TOPICS,
        metadata={"doc": "topics to record, 'name' or 'name:pkg/msg/Type' (untyped ones are discovered)"},
    )
    task: str = field(default="", metadata={"doc": "task of episodes started by teleop/episode_event"})
    skill: str = field(default="", metadata={"doc": "skill of episodes started by teleop/episode_event"})
    arguments: str = field(default="", metadata={"doc": "comma-separated skill arguments for those episodes"})
    operator: str = field(default="", metadata={"doc": "operator name for those episodes"})
    min_free_space_gb: float = field(
        default=2.0, metadata={"doc": "GiB that must stay free on the output filesystem", "range": (0.0, 1e6)}
    )
    min_free_fraction: float = field(
        default=0.02,
        metadata={"doc": "fraction of the output filesystem that must stay free", "range": (0.0, 0.99)},
    )
    chunk_size: int = field(
        default=MIB, metadata={"doc": "bytes per MCAP chunk, flushed when full", "range": (1024, MIB)}
    )
    flush_interval: float = field(
        default=1.0, metadata={"doc": "s; a chunk older than this is flushed too", "range": (0.01, 60.0)}
    )
    max_queue_mb: float = field(
        default=256.0,
        metadata={"doc": "MiB of messages the writer queue holds before dropping", "range": (1.0, 1e5)},
    )
    queue_depth: int = field(
        default=100, metadata={"doc": "QoS history depth of each recorded subscription", "range": (1, 1000)}
    )
    disk_check_period: float = field(
        default=2.0, metadata={"doc": "s between free-space checks while recording", "range": (0.05, 600.0)}
    )
    status_rate: float = field(
        default=2.0, metadata={"doc": "Hz of recorder/status while recording", "range": (0.1, 50.0)}
    )

    def __post_init__(self) -> None:
        for entry in self.topics:
            if not entry.split(":")[0].strip():
                raise ValueError(f"empty topic name in topics: {entry!r}")


def message_class(msgtype: str) -> type:
    """The rclpy message class of ``pkg/msg/Type``."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def stamp_ns(stamp: Any) -> int:
    """builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class RecorderNode(Node):
    """Wires topics, services and status around an :class:`EpisodeRecorder`."""

    def __init__(self) -> None:
        super().__init__("recorder")
        self.config = declare_config(self, "", RecorderConfig)
        cfg = self.config
        self.root = Path(cfg.output_dir).expanduser()
        self.guard = DiskGuard(int(cfg.min_free_space_gb * GIB), cfg.min_free_fraction, "min_free_space_gb")
        self.guard.check(self.root)  # DiskSpaceError (a RuntimeError): exit 2 with the reason
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = typestore()
        for recovered in recover_open_episodes(self.root, self.store):
            self.get_logger().warning(
                f"recovered episode {recovered.episode_id} left open by a crash: {recovered.messages} "
                f"messages up to t={recovered.last_time_ns} ns -> {recovered.path}"
            )
        self.software = software_info()
        self.recorder = EpisodeRecorder(
            self.root,
            self.store,
            WriterOptions(cfg.chunk_size, cfg.flush_interval),
            max_queue_bytes=int(cfg.max_queue_mb * MIB),
            guard=self.guard,
            disk_check_period=cfg.disk_check_period,
            on_auto_stop=lambda reason: self.get_logger().error(f"episode closed: {reason}"),
        )
        self._camera_info: dict[str, tuple[str, bytes]] = {}  # camera prefix -> (stream, raw CameraInfo)
        self._recorded: dict[str, tuple[Subscription, QoSProfile]] = {}
        self._wanted: dict[str, str | None] = {}  # resolved topic -> type (None: discover)
        for entry in cfg.topics:
            name, _, msgtype = entry.partition(":")
            self._wanted[self.resolve_topic_name(name.strip())] = msgtype.strip() or None
        self._update_subscriptions()
        self.create_timer(1.0, self._update_subscriptions)

        self._status_pub = self.create_publisher(EpisodeStatus, "recorder/status", LATCHED)
        self._last_status_key: tuple | None = None
        self._dropped_reported = 0
        self.create_timer(1.0 / cfg.status_rate, self._publish_status)
        self.create_service(StartEpisode, "recorder/start_episode", self._on_start)
        self.create_service(StopEpisode, "recorder/stop_episode", self._on_stop)
        self.create_subscription(EpisodeEvent, "teleop/episode_event", self._on_event, 10)
        self.create_subscription(Intervention, "teleop/intervention", self._on_intervention, 10)
        self._publish_status(force=True)
        self.get_logger().info(
            f"recorder: {len(self._wanted)} topics into {self.root.absolute()} (chunks of "
            f"{cfg.chunk_size} B, flushed every {cfg.flush_interval:g} s; "
            f"{self.guard.min_free_bytes / GIB:g} GiB must stay free)"
        )

    def now_ns(self) -> int:
        """The graph's clock (sim time under use_sim_time) in ns."""
        return self.get_clock().now().nanoseconds

    # -- subscriptions ---------------------------------------------------------------------------
    def _qos_for(self, topic: str) -> QoSProfile:
        """QoS that matches every current publisher while losing least: reliable unless a publisher is
        best effort; transient local (the latched value) only if every publisher offers it."""
        infos = self.get_publishers_info_by_topic(topic)
        best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
        latched = bool(infos) and all(
            i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos
        )
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.config.queue_depth,
            reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        )

    def _update_subscriptions(self) -> None:
        """Subscribe to wanted topics (discovering untyped ones) and follow publishers' QoS."""
        discovered: dict[str, list[str]] | None = None
        for topic, msgtype in self._wanted.items():
            if msgtype is None:
                if discovered is None:
                    discovered = dict(self.get_topic_names_and_types())
                types = discovered.get(topic)
                if not types:
                    continue
                msgtype = self._wanted[topic] = types[0]
            qos = self._qos_for(topic)
            current = self._recorded.get(topic)
            if current is not None:
                has_publishers = bool(self.count_publishers(topic))
                if not has_publishers or (current[1].reliability, current[1].durability) == (
                    qos.reliability,
                    qos.durability,
                ):
                    continue
                self.destroy_subscription(current[0])
            try:
                cls = message_class(msgtype)
            except (ImportError, AttributeError, ValueError) as exc:
                self.get_logger().error(f"cannot record {topic}: unknown type {msgtype} ({exc})")
                self._wanted[topic] = msgtype
                continue
            callback = self._make_callback(topic, msgtype)
            sub = self.create_subscription(cls, topic, callback, qos, raw=True)
            self._recorded[topic] = (sub, qos)

    def _make_callback(self, topic: str, msgtype: str):
        camera = self._camera_key(topic) if msgtype == CAMERA_INFO else None

        def on_message(data: bytes) -> None:
            if camera is not None:
                prefix, stream = camera
                cached = self._camera_info.get(prefix)
                if cached is None or stream == "color" or cached[0] == stream:
                    self._camera_info[prefix] = (stream, data)
            self.recorder.submit(topic, msgtype, data, self.now_ns())

        return on_message

    def _camera_key(self, topic: str) -> tuple[str, str] | None:
        """``/ns/camera/color/camera_info`` -> (``camera``, ``color``), relative to our namespace."""
        namespace = self.get_namespace().rstrip("/")
        relative = topic[len(namespace) :] if namespace and topic.startswith(namespace + "/") else topic
        parts = relative.strip("/").split("/")
        if len(parts) < 3 or parts[-1] != "camera_info":
            return None
        return "/".join(parts[:-2]), parts[-2]

    def calibration(self) -> dict:
        """Calibration blocks from the latest CameraInfo of each camera (colour stream preferred)."""
        blocks = {}
        for prefix, (_, raw) in self._camera_info.items():
            try:
                blocks[prefix] = calibration_from_camera_info(self.store.deserialize_cdr(raw, CAMERA_INFO))
            except Exception as exc:  # a malformed message must not cost the episode
                self.get_logger().warning(f"camera_info of {prefix} unreadable: {exc}")
        return blocks

    # -- episodes ---------------------------------------------------------------------------------
    def start_episode(
        self, task: str, skill: str, arguments: list[str], seed: int, operator: str, notes: str
    ) -> str:
        """Open an episode; raises RuntimeError/DiskSpaceError/OSError when it cannot."""
        meta = EpisodeMetadata(
            episode_id=make_episode_id(self.root, skill),
            task=task,
            skill=skill,
            arguments=list(arguments),
            seed=int(seed),
            operator=operator,
            start_time_ns=self.now_ns(),
            software=dict(self.software),
            notes=notes,
        )
        self.recorder.open(meta)
        self.get_logger().info(
            f"episode {meta.episode_id} started (task '{task}', skill '{skill}' {arguments})"
        )
        self._publish_status(force=True)
        return meta.episode_id

    def stop_episode(self, outcome: str, notes: str = "") -> Path:
        """Finish the open episode with ``outcome``; returns its folder."""
        path = self.recorder.finish(outcome, self.now_ns(), notes, self.calibration())
        meta = EpisodeMetadata.load(path)
        counts = ", ".join(f"{t} {i.count}" + (f" ({i.dropped} dropped)" if i.dropped else "")
                           for t, i in meta.topics.items())  # fmt: skip
        self.get_logger().info(f"episode {meta.episode_id} finished: {outcome}, {meta.duration_s:.1f} s -> "
                               f"{path} [{counts}]")  # fmt: skip
        self._publish_status(force=True)
        return path

    def discard_episode(self) -> str:
        """Delete the open episode."""
        episode_id = self.recorder.discard()
        self.get_logger().info(f"episode {episode_id} discarded")
        self._publish_status(force=True)
        return episode_id

    def _on_start(
        self, request: StartEpisode.Request, response: StartEpisode.Response
    ) -> StartEpisode.Response:
        try:
            response.episode_id = self.start_episode(
                request.task, request.skill, list(request.arguments), request.seed, request.operator_name,
                request.notes,
            )  # fmt: skip
            response.success, response.message = True, f"recording {response.episode_id}"
        except (RuntimeError, OSError, ValueError) as exc:
            response.success, response.message = False, f"cannot start an episode: {exc}"
            self.get_logger().error(response.message)
        return response

    def _on_stop(self, request: StopEpisode.Request, response: StopEpisode.Response) -> StopEpisode.Response:
        try:
            if request.discard:
                response.message = f"discarded {self.discard_episode()}"
            else:
                if request.outcome not in OUTCOMES:
                    raise ValueError(f"outcome must be -1, 0 or 1, got {request.outcome}")
                response.path = str(self.stop_episode(OUTCOMES[request.outcome], request.notes))
                response.message = f"finished {Path(response.path).name}: {OUTCOMES[request.outcome]}"
            response.success = True
        except (RuntimeError, OSError, ValueError) as exc:
            response.success, response.message = False, f"cannot stop the episode: {exc}"
            self.get_logger().error(response.message)
        return response

    def _on_event(self, msg: EpisodeEvent) -> None:
        cfg = self.config
        try:
            if msg.kind == EpisodeEvent.START:
                arguments = [a.strip() for a in cfg.arguments.split(",") if a.strip()]
                self.start_episode(
                    cfg.task, cfg.skill, arguments, -1, cfg.operator, f"started by {msg.source}"
                )
            elif msg.kind in (EpisodeEvent.END_SUCCESS, EpisodeEvent.END_FAILURE):
                outcome = "success" if msg.kind == EpisodeEvent.END_SUCCESS else "failure"
                self.stop_episode(outcome, f"ended by {msg.source}")
            elif msg.kind == EpisodeEvent.DISCARD:
                self.discard_episode()
            else:
                self.get_logger().warning(f"unknown episode event kind {msg.kind} from {msg.source}")
        except (RuntimeError, OSError, DiskSpaceError) as exc:
            self.get_logger().error(f"episode event {msg.kind} from '{msg.source}' refused: {exc}")

    def _on_intervention(self, msg: Intervention) -> None:
        stamp = stamp_ns(msg.header.stamp) or self.now_ns()
        self.recorder.intervention(bool(msg.active), stamp, msg.device)

    # -- status -----------------------------------------------------------------------------------
    def _publish_status(self, force: bool = False) -> None:
        status = self.recorder.status()
        key = (status.recording, status.episode_id, status.episodes_completed, status.last_outcome)
        if not (force or status.recording or key != self._last_status_key):
            return
        self._last_status_key = key
        msg = EpisodeStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.recording = status.recording
        msg.episode_id = status.episode_id
        msg.task, msg.skill, msg.arguments = status.task, status.skill, list(status.arguments)
        msg.messages = int(status.messages)
        msg.duration = max(0, self.now_ns() - status.start_time_ns) * 1e-9 if status.recording else 0.0
        msg.episodes_completed = int(status.episodes_completed)
        msg.last_outcome = status.last_outcome
        self._status_pub.publish(msg)
        dropped = sum(status.dropped.values())
        if dropped > self._dropped_reported:
            self._dropped_reported = dropped
            self.get_logger().warning(
                f"writer queue full: dropped so far {status.dropped}", throttle_duration_sec=5.0
            )
        elif not status.recording:
            self._dropped_reported = 0

    def close(self) -> None:
        """Finish an open episode with outcome unknown and stop the writer thread."""
        calibration = self.calibration()
        path = None
        if self.recorder.recording:
            try:
                path = self.recorder.finish("unknown", self.now_ns(), "recorder shut down", calibration)
            except RuntimeError as exc:
                self.get_logger().error(f"could not finish the open episode: {exc}")
        self.recorder.close(self.now_ns())
        if path is not None:
            self.get_logger().info(f"open episode finished at shutdown (outcome unknown): {path}")


def _spin(node: RecorderNode) -> None:
    """Spin until Ctrl-C or SIGTERM (rclpy turns SIGTERM into an external shutdown); either way
    run_node then calls :meth:`RecorderNode.close`, which finishes an open episode."""
    with contextlib.suppress(ExternalShutdownException):
        rclpy.spin(node)


def main(args: list[str] | None = None) -> None:
    """Entry point: ``recorder --ros-args -p output_dir:=data/episodes``."""
    sys.exit(run_node(RecorderNode, spin=_spin, shutdown=lambda node: node.close(), args=args))


if __name__ == "__main__":
    main()
