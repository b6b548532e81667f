"""Live view: the graph's state in Foxglove, through a Foxglove WebSocket server (foxglove-sdk).

Streams camera images (JPEG CompressedImage, rate-limited), joint states, the TCP pose, robot
commands, gripper state, interventions, safety refusals and the recorder's status. The server binds
127.0.0.1 by default: anyone who can reach it sees the cameras, so exposing it on a network is an
explicit choice (``host`` parameter). Open the logged URL in Foxglove (or connect Foxglove to
``ws://host:port``).

:class:`~meta_robot.ros.live_view.LiveView` is the ROS-free part (server, channels, conversions, rate
limits); this node only subscribes and hands messages to it.
"""

from __future__ import annotations

import sys

from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import ArmCommand, EpisodeStatus, GripperState, Intervention
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String

from meta_robot.core.observation import COLOR_IMAGE
from meta_robot.ros.entry import run_node
from meta_robot.ros.live_view import POSE_TOPICS, LiveView, LiveViewConfig
from meta_robot.ros.parameters import declare_config

# -- ROS node ---------------------------------------------------------------------------------------
IMAGE_QOS = QoSProfile(  # as the cameras publish: RELIABLE, newest 2
    history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)  # fmt: skip
LATCHED = QoSProfile(  # recorder status and e-stop are transient-local: a late viewer gets the last one
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)  # fmt: skip
JSON_TYPES = {
    "joint_states": (JointState, 10),
    "gripper/state": (GripperState, 10),
    "robot_command": (ArmCommand, 10),
    "teleop/intervention": (Intervention, 10),
    "recorder/status": (EpisodeStatus, LATCHED),
    "safety/refusals": (String, 10),
    "safety/estop_active": (Bool, LATCHED),
}


class LiveViewNode(Node):
    """Subscribes to the shown topics (relative names, so a namespace applies) and forwards them to
    :class:`LiveView`."""

    def __init__(self) -> None:
        super().__init__("live_view")
        config = declare_config(self, "", LiveViewConfig)
        self.view = LiveView(config, self.resolve_topic_name, name=self.get_fully_qualified_name())
        for prefix in config.cameras:
            self.create_subscription(
                Image, f"{prefix}/{COLOR_IMAGE}", lambda m, p=prefix: self.view.show_image(p, m), IMAGE_QOS
            )
        for topic in POSE_TOPICS:
            self.create_subscription(PoseStamped, topic, lambda m, t=topic: self.view.show_pose(t, m), 10)
        for topic, (msg_type, qos) in JSON_TYPES.items():
            self.create_subscription(msg_type, topic, lambda m, t=topic: self.view.show_json(t, m), qos)
        self.get_logger().info(
            f"live view on {self.view.url} (cameras {list(config.cameras)} at <= {config.image_rate:g} Hz);"
            f" open in Foxglove: {self.view.app_url()}"
        )


def main(args: list[str] | None = None) -> None:
    """Entry point: ``live_view --ros-args -p port:=8765`` (``-p host:=0.0.0.0`` to expose it)."""
    sys.exit(run_node(LiveViewNode, shutdown=lambda node: node.view.close(), args=args))


if __name__ == "__main__":
    main()
