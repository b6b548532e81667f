"""The live view's ROS-free part: a Foxglove WebSocket server (foxglove-sdk) with its channels,
message conversions and rate limits. It takes rclpy and rosbags messages alike, so the node and a
recording's replay show the same thing. The server binds 127.0.0.1 by default: anyone who can reach it
sees the cameras, so exposing it on a network is an explicit choice (``host``). Images are JPEG-encoded
only while a client subscribes to them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import foxglove
import numpy as np
from foxglove.channels import CompressedImageChannel, PoseInFrameChannel
from foxglove.messages import CompressedImage, Pose, PoseInFrame, Quaternion, Timestamp, Vector3

from meta_robot.camera.image_decoding import color_from_msg
from meta_robot.core.observation import CAMERA_NAMESPACES, CAMERAS, COLOR_IMAGE

DEFAULT_CAMERAS = tuple(CAMERA_NAMESPACES[camera] for camera in CAMERAS)  # topic prefixes
# Relative ROS topic -> how it is shown. "json": the message as JSON (all its fields).
JSON_TOPICS = (
    "joint_states",
    "gripper/state",
    "robot_command",
    "teleop/intervention",
    "recorder/status",
    "safety/refusals",
    "safety/estop_active",
)
POSE_TOPICS = ("ee_pose",)
RATE_LIMITED = ("joint_states", "ee_pose", "gripper/state")  # high-rate state streams
LATCHED_TOPICS = ("recorder/status", "safety/estop_active")  # last message re-sent to a new viewer


@dataclass(frozen=True)
class LiveViewConfig:
    """Parameters of the live view (declared as ROS parameters by the node)."""

    host: str = field(default="127.0.0.1", metadata={"doc": "interface the WebSocket server binds"})
    port: int = field(default=8765, metadata={"doc": "TCP port of the WebSocket server (0 = any free)"})
    image_rate: float = field(
        default=10.0, metadata={"doc": "Hz, max rate of images per camera", "range": (0.1, 60.0)}
    )
    state_rate: float = field(
        default=30.0, metadata={"doc": "Hz, max rate of joint/pose/gripper states", "range": (0.1, 1000.0)}
    )
    jpeg_quality: int = field(
        default=80, metadata={"doc": "JPEG quality of camera images", "range": (10, 100)}
    )
    cameras: tuple[str, ...] = field(default=DEFAULT_CAMERAS, metadata={"doc": "camera topic prefixes"})

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if not (self.image_rate > 0 and self.state_rate > 0):
            raise ValueError("image_rate and state_rate must be > 0 Hz")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if not self.host:
            raise ValueError("host must not be empty")


def to_jsonable(value: Any) -> Any:
    """A ROS message (rclpy or rosbags) as plain JSON data: fields by name, arrays as lists."""
    if hasattr(value, "get_fields_and_field_types"):  # rclpy message
        return {name: to_jsonable(getattr(value, name)) for name in value.get_fields_and_field_types()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # rosbags message
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "array":
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def _timestamp(stamp: Any) -> Timestamp:
    return Timestamp(int(stamp.sec), int(stamp.nanosec))


class RateLimiter:
    """Lets one event per ``1 / rate`` seconds through, per key."""

    def __init__(self, rate: float) -> None:
        self.period = 1.0 / rate
        self._last: dict[str, float] = {}

    def ready(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last.get(key, -math.inf) < self.period:
            return False
        self._last[key] = now
        return True


class _Latch(foxglove.ServerListener):
    """Re-sends the last message of a latched topic when a client subscribes to it: the recorder's
    status and the e-stop change rarely, and a viewer that connects later must still see them."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[foxglove.Channel, Any]] = {}

    def on_subscribe(self, client: Any, channel: Any) -> None:
        if channel.topic in self.last:
            target, payload = self.last[channel.topic]
            target.log(payload)


class LiveView:
    """The WebSocket server and one channel per shown topic (advertised at start, so a client sees
    every stream even before it has data)."""

    def __init__(
        self, config: LiveViewConfig, resolve=lambda name: "/" + name, name: str = "meta_robot"
    ) -> None:
        self.config = config
        self._latch = _Latch()
        self._latched = {resolve(topic) for topic in LATCHED_TOPICS}
        self.server = foxglove.start_server(
            name=name, host=config.host, port=config.port, server_listener=self._latch
        )
        self.images = {
            prefix: CompressedImageChannel(resolve(f"{prefix}/{COLOR_IMAGE}")) for prefix in config.cameras
        }
        self.poses = {topic: PoseInFrameChannel(resolve(topic)) for topic in POSE_TOPICS}
        self.json = {
            topic: foxglove.Channel(resolve(topic), schema={"type": "object"}, message_encoding="json")
            for topic in JSON_TOPICS
        }
        self._image_limit = RateLimiter(config.image_rate)
        self._state_limit = RateLimiter(config.state_rate)

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    def app_url(self) -> str | None:
        """The Foxglove web app URL that opens this server."""
        return self.server.app_url()

    def show_image(self, prefix: str, msg: Any) -> bool:
        """JPEG-encode and send a sensor_msgs/Image (rgb8/bgr8); False if skipped (rate, no viewer)."""
        channel = self.images[prefix]
        if not channel.has_sinks() or not self._image_limit.ready(prefix):
            return False
        rgb = color_from_msg(msg)
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
        )
        if not ok:
            return False
        channel.log(
            CompressedImage(
                timestamp=_timestamp(msg.header.stamp),
                frame_id=msg.header.frame_id,
                data=jpeg.tobytes(),
                format="jpeg",
            )
        )
        return True

    def show_pose(self, topic: str, msg: Any) -> bool:
        """Send a geometry_msgs/PoseStamped as a foxglove PoseInFrame (shown in the 3D panel)."""
        if not self._state_limit.ready(topic):
            return False
        p, q = msg.pose.position, msg.pose.orientation
        self.poses[topic].log(
            PoseInFrame(
                timestamp=_timestamp(msg.header.stamp),
                frame_id=msg.header.frame_id,
                pose=Pose(
                    position=Vector3(x=p.x, y=p.y, z=p.z), orientation=Quaternion(x=q.x, y=q.y, z=q.z, w=q.w)
                ),
            )
        )
        return True

    def show_json(self, topic: str, msg: Any) -> bool:
        """Send any ROS message as JSON (state topics rate-limited, events never dropped)."""
        if topic in RATE_LIMITED and not self._state_limit.ready(topic):
            return False
        channel, payload = self.json[topic], to_jsonable(msg)
        if channel.topic() in self._latched:
            self._latch.last[channel.topic()] = (channel, payload)
        channel.log(payload)
        return True

    def close(self) -> None:
        self.server.stop()
