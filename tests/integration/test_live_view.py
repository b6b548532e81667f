"""The live view node as a process: a Foxglove WebSocket client on loopback sees the graph's topics
advertised and receives what a test node publishes; the server listens on loopback only."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import time

import numpy as np
import pytest
import websockets
from meta_robot_interfaces.msg import EpisodeStatus
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState

from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.graph import NodeSpec
from meta_robot.ros.launcher import GraphProcesses

pytestmark = pytest.mark.integration
SUBPROTOCOL = (
    "foxglove.sdk.v1"  # what foxglove-sdk 0.30's server accepts ("foxglove.websocket.v1" is refused)
)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
EXPECTED_TOPICS = {
    "/camera/color/image_raw",
    "/wrist_camera/color/image_raw",
    "/joint_states",
    "/ee_pose",
    "/robot_command",
    "/gripper/state",
    "/teleop/intervention",
    "/recorder/status",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a socket listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                address, hex_port = fields[1].split(":")
                if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                    found.add(address)
    return found


@pytest.fixture(scope="module")
def live_view(tmp_path_factory):
    port = free_port()
    spec = NodeSpec(
        name="live_view",
        executable="live_view",
        module="meta_robot.nodes.live_view_node",
        params_files=("live_view.yaml",),
        parameters={"port": port},
    )
    with GraphProcesses([spec], os.environ, log_dir=tmp_path_factory.mktemp("logs")) as running:
        deadline = time.monotonic() + 60
        while not listening_addresses(port):
            running.check_running()
            assert time.monotonic() < deadline, "live view never started listening"
            time.sleep(0.2)
        yield port
        running.check_running()


@pytest.fixture(scope="module")
def ros(live_view):
    with BackgroundNode("live_view_test") as background:
        yield background


def test_listens_on_loopback_only(live_view):
    # 0100007F is 127.0.0.1 in /proc/net/tcp's byte order; nothing on 0.0.0.0, ::, or another address
    assert listening_addresses(live_view) == {"0100007F"}


def test_client_sees_channels_and_receives_messages(live_view, ros):
    joints = ros.node.create_publisher(JointState, "joint_states", 10)
    images = ros.node.create_publisher(Image, "camera/color/image_raw", 2)
    status = ros.node.create_publisher(EpisodeStatus, "recorder/status", LATCHED)
    status.publish(EpisodeStatus(recording=True, episode_id="20250101-120000-pick-0001", skill="pick"))

    def publish() -> None:
        joints.publish(
            JointState(name=[f"fr3_joint{i + 1}" for i in range(7)], position=[0.1 * i for i in range(7)])
        )
        pixels = np.full((8, 8, 3), 200, dtype=np.uint8)
        images.publish(Image(height=8, width=8, encoding="rgb8", step=24, data=pixels.tobytes()))

    async def session() -> dict[str, object]:
        async with websockets.connect(f"ws://127.0.0.1:{live_view}", subprotocols=[SUBPROTOCOL]) as ws:
            channels: dict[int, dict] = {}
            while not {c["topic"] for c in channels.values()} >= EXPECTED_TOPICS:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["op"] == "advertise":
                    channels.update({c["id"]: c for c in message["channels"]})
            by_topic = {c["topic"]: c for c in channels.values()}
            wanted = {1: "/joint_states", 2: "/camera/color/image_raw", 3: "/recorder/status"}
            subscriptions = [{"id": i, "channelId": by_topic[t]["id"]} for i, t in wanted.items()]
            await ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))
            received: dict[str, object] = {}
            deadline = time.monotonic() + 30
            while len(received) < len(wanted):
                assert time.monotonic() < deadline, f"only received {sorted(received)}"
                publish()
                try:
                    message = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                if isinstance(message, bytes) and message[0] == 0x01:  # MessageData
                    (subscription,) = struct.unpack_from("<I", message, 1)
                    received.setdefault(wanted[subscription], message[13:])
            return {"channels": by_topic, "received": received}

    result = asyncio.run(session())
    channels, received = result["channels"], result["received"]
    assert channels["/camera/color/image_raw"]["schemaName"] == "foxglove.CompressedImage"
    assert channels["/ee_pose"]["schemaName"] == "foxglove.PoseInFrame"
    assert channels["/joint_states"]["encoding"] == "json"
    joint_state = json.loads(received["/joint_states"])
    assert joint_state["name"][0] == "fr3_joint1" and joint_state["position"][6] == pytest.approx(0.6)
    recorder = json.loads(received["/recorder/status"])  # latched: published before the client connected
    assert recorder["recording"] is True and recorder["episode_id"] == "20250101-120000-pick-0001"
    assert b"\xff\xd8" in received["/camera/color/image_raw"]  # the JPEG's start-of-image marker
