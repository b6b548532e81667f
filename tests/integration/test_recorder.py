"""The recorder node as a separate process over DDS: what is published during an episode is what
the finished folder holds (read back with rosbags and with mcap), a SIGKILLed recorder leaves a
readable MCAP that a restarted recorder recovers, and a full disk stops it from starting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap.records import Message
from mcap.stream_reader import StreamReader
from mcap_ros2.decoder import DecoderFactory
from meta_robot_interfaces.msg import ArmCommand, EpisodeStatus, Intervention
from meta_robot_interfaces.srv import StartEpisode, StopEpisode
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import CameraInfo, Image, JointState

from meta_robot.recording.episode import OPEN_DIR, EpisodeMetadata
from meta_robot.recording.typestore import typestore
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.graph import NodeSpec
from meta_robot.ros.launcher import GraphProcesses

pytestmark = pytest.mark.integration
# A namespace of its own: a neighbour's graph on the same DDS domain cannot add to the exact counts.
NS = f"recorder_test_{os.getpid()}"
FULL_NAME = f"/{NS}/recorder"
TOPICS = {
    "joint_states": JointState,
    "robot_command": ArmCommand,
    "camera/color/image_raw": Image,
    "camera/color/camera_info": CameraInfo,
    "teleop/intervention": Intervention,
}
TYPE_NAMES = {
    JointState: "sensor_msgs/msg/JointState",
    ArmCommand: "meta_robot_interfaces/msg/ArmCommand",
    Image: "sensor_msgs/msg/Image",
    CameraInfo: "sensor_msgs/msg/CameraInfo",
    Intervention: "meta_robot_interfaces/msg/Intervention",
}
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def recorder_spec(root: Path, **parameters) -> NodeSpec:
    topics = [f"{topic}:{TYPE_NAMES[cls]}" for topic, cls in TOPICS.items()]
    return NodeSpec(
        name="recorder",
        executable="recorder",
        module="meta_robot.nodes.recorder_node",
        params_files=("recorder.yaml",),
        parameters={"output_dir": str(root), "topics": topics, "min_free_space_gb": 0.1, **parameters},
        namespace=NS,
    )


class Harness:
    """The test side: publishers on the recorded topics, the recorder's services and status."""

    def __init__(self, ros: BackgroundNode, graph: GraphProcesses) -> None:
        self.ros, self.graph, self.node = ros, graph, ros.node
        self.pubs = {topic: self.node.create_publisher(cls, topic, RELIABLE) for topic, cls in TOPICS.items()}
        self.status: list[EpisodeStatus] = []
        self.node.create_subscription(EpisodeStatus, "recorder/status", self.status.append, LATCHED)
        self.start = self.node.create_client(StartEpisode, "recorder/start_episode")
        self.stop = self.node.create_client(StopEpisode, "recorder/stop_episode")

    def wait_until(self, condition, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.graph.check_running()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def wait_ready(self) -> None:
        self.wait_until(lambda: self.start.service_is_ready() and self.stop.service_is_ready(), "services")
        for topic, pub in self.pubs.items():
            self.wait_until(lambda pub=pub: pub.get_subscription_count() >= 1, f"recorder subscribed {topic}")

    def call(self, client, request):
        future = client.call_async(request)
        self.wait_until(future.done, f"answer from {client.srv_name}", timeout=30.0)
        return future.result()

    def start_episode(self) -> str:
        request = StartEpisode.Request(
            task="open the top drawer",
            skill="open_drawer",
            arguments=["drawer_top"],
            seed=3,
            operator_name="pytest",
            notes="integration",
        )
        response = self.call(self.start, request)
        assert response.success, response.message
        return response.episode_id

    def stop_episode(self, outcome: int = StopEpisode.Request.OUTCOME_SUCCESS) -> Path:
        response = self.call(self.stop, StopEpisode.Request(outcome=outcome, discard=False, notes="done"))
        assert response.success, response.message
        return Path(response.path)

    def written(self) -> int:
        return int(self.status[-1].messages) if self.status and self.status[-1].recording else -1

    def publish_joint_states(self, count: int, period: float = 0.0) -> None:
        for i in range(count):
            msg = JointState(name=["j1", "j2"], position=[0.01 * i, -0.01 * i])
            msg.header.stamp = self.node.get_clock().now().to_msg()
            self.pubs["joint_states"].publish(msg)
            time.sleep(period or 0.002)


def stamp(sec: int, nanosec: int = 0):
    msg = JointState().header.stamp
    msg.sec, msg.nanosec = sec, nanosec
    return msg


def publish_known_messages(h: Harness) -> dict[str, int]:
    h.publish_joint_states(30)
    for i in range(10):
        command = ArmCommand(mode=ArmCommand.MODE_ABSOLUTE, gripper_width=0.04, source="pytest")
        command.pose.position.x = 0.4 + 0.01 * i
        command.pose.orientation.w = 1.0
        h.pubs["robot_command"].publish(command)
        time.sleep(0.005)
    for i in range(5):
        image = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
        image.data = np.full(64 * 48 * 3, i, dtype=np.uint8).tobytes()
        h.pubs["camera/color/image_raw"].publish(image)
        time.sleep(0.02)
    info = CameraInfo(height=48, width=64, distortion_model="plumb_bob", d=[0.0] * 5)
    info.k = [50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0]
    info.header.frame_id = "camera_color_optical_frame"
    h.pubs["camera/color/camera_info"].publish(info)
    for active, sec in ((True, 100), (False, 102)):
        msg = Intervention(active=active, device="spacemouse", reason="test")
        msg.header.stamp = stamp(sec)
        h.pubs["teleop/intervention"].publish(msg)
        time.sleep(0.02)
    return {
        f"/{NS}/joint_states": 30,
        f"/{NS}/robot_command": 10,
        f"/{NS}/camera/color/image_raw": 5,
        f"/{NS}/camera/color/camera_info": 1,
        f"/{NS}/teleop/intervention": 2,
    }


def rosbags_counts(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with AnyReader([folder], default_typestore=typestore()) as reader:
        for connection, _, raw in reader.messages():
            reader.deserialize(raw, connection.msgtype)
            counts[connection.topic] = counts.get(connection.topic, 0) + 1
    return counts


def mcap_counts(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    (path,) = folder.glob("*.mcap")
    with open(path, "rb") as f:
        for _, channel, _, decoded in make_reader(
            f, decoder_factories=[DecoderFactory()]
        ).iter_decoded_messages():
            assert decoded is not None
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
    return counts


def stream_messages(path: Path) -> int:
    """Messages the plain mcap stream reader yields from a file cut short, up to where it breaks."""
    count = 0
    with open(path, "rb") as f:
        try:
            for record in StreamReader(f).records:
                count += isinstance(record, Message)
        except Exception:  # the unfinished end of a crashed file
            pass
    return count


@pytest.fixture
def harness_factory(tmp_path):
    """Start a recorder graph on ``root`` and a test node beside it; everything stops at teardown."""
    opened: list = []

    def make(root: Path, **parameters) -> Harness:
        graph = GraphProcesses(
            [recorder_spec(root, **parameters)], os.environ, log_dir=tmp_path / f"logs{len(opened)}"
        )
        graph.start()
        opened.append(graph)
        if not any(isinstance(o, BackgroundNode) for o in opened):
            opened.append(BackgroundNode("recorder_test", namespace=NS))
        ros = next(o for o in opened if isinstance(o, BackgroundNode))
        harness = Harness(ros, graph)
        harness.wait_ready()
        return harness

    yield make
    for item in reversed(opened):
        if isinstance(item, GraphProcesses):
            item.stop()
    for item in opened:
        if isinstance(item, BackgroundNode):
            item.close()


def test_episode_holds_exactly_what_was_published(tmp_path, harness_factory):
    root = tmp_path / "episodes"
    h = harness_factory(root)
    episode_id = h.start_episode()
    expected = publish_known_messages(h)
    total = sum(expected.values())
    h.wait_until(lambda: h.written() == total, f"{total} messages written (status)")
    path = h.stop_episode()

    assert path == root / episode_id and path.is_dir()
    assert not (root / OPEN_DIR / episode_id).exists()
    assert rosbags_counts(path) == expected
    assert mcap_counts(path) == expected
    meta = EpisodeMetadata.load(path)
    assert (meta.task, meta.skill, meta.arguments, meta.seed, meta.operator) == (
        "open the top drawer",
        "open_drawer",
        ["drawer_top"],
        3,
        "pytest",
    )
    assert (meta.outcome, meta.complete) == ("success", True)
    assert [(s.start_ns, s.end_ns, s.device) for s in meta.interventions] == [
        (100 * 10**9, 102 * 10**9, "spacemouse")
    ]
    assert {t: i.count for t, i in meta.topics.items()} == expected
    assert meta.calibration["camera"].k[0] == 50.0
    assert meta.calibration["camera"].frame_id == "camera_color_optical_frame"
    h.wait_until(lambda: not h.status[-1].recording and h.status[-1].last_outcome == "success", "status")
    assert h.status[-1].episodes_completed == 1


def test_sigkill_leaves_a_readable_episode_that_is_recovered(tmp_path, harness_factory):
    root = tmp_path / "episodes"
    h = harness_factory(root, chunk_size=4096, flush_interval=0.2)
    first = h.start_episode()
    h.publish_joint_states(20)
    h.wait_until(lambda: h.written() == 20, "20 messages written")
    finished = h.stop_episode()

    second = h.start_episode()
    (open_mcap,) = (root / OPEN_DIR / second).glob("*.mcap")
    deadline = time.monotonic() + 30
    while stream_messages(open_mcap) < 50:  # messages of the open episode reach the file in chunks
        assert time.monotonic() < deadline, "nothing of the open episode reached the disk"
        h.publish_joint_states(20, period=0.005)
    h.graph.kill(FULL_NAME)
    h.graph.processes[FULL_NAME].wait(timeout=10)

    assert rosbags_counts(finished) == {f"/{NS}/joint_states": 20} == mcap_counts(finished)
    assert EpisodeMetadata.load(finished).outcome == "success"
    crashed = EpisodeMetadata.load(root / OPEN_DIR / second)
    assert (crashed.outcome, crashed.complete) == ("unknown", False)
    on_disk = stream_messages(open_mcap)
    assert on_disk >= 50

    h2 = harness_factory(root)
    # The recovered copy is renamed into place first, the crashed original deleted after it.
    h2.wait_until(
        lambda: (root / second).is_dir() and not (root / OPEN_DIR / second).exists(),
        "the crashed episode recovered",
    )
    recovered = EpisodeMetadata.load(root / second)
    assert (recovered.outcome, recovered.complete, recovered.skill) == ("unknown", False, "open_drawer")
    assert "recovered after crash" in recovered.notes
    counts = rosbags_counts(root / second)
    assert counts == mcap_counts(root / second)
    assert counts[f"/{NS}/joint_states"] >= 50
    assert recovered.topics[f"/{NS}/joint_states"].count == counts[f"/{NS}/joint_states"]
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == sorted([first, second])


def test_refuses_to_start_without_free_space(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "meta_robot.nodes.recorder_node",
        "--ros-args",
        "-p",
        f"output_dir:={tmp_path / 'episodes'}",
        "-p",
        "min_free_space_gb:=900000.0",
    ]
    result = subprocess.run(cmd, env=os.environ, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "GiB free" in result.stderr and "min_free_space_gb" in result.stderr
    assert str(tmp_path / "episodes") in result.stderr
    assert not (tmp_path / "episodes").exists()
