"""Publishes CameraFrames under realsense2_camera's topic names; used by the RealSense node and the
sim bridge alike, so perception subscribes to the same four topics on the robot and in sim."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from meta_robot.camera.frames import CameraFrame
from meta_robot.core.observation import COLOR_IMAGE, COLOR_INFO, DEPTH_IMAGE, DEPTH_INFO
from meta_robot.ros.camera_messages import (
    COLOR_ENCODING,
    DEPTH_ENCODING,
    camera_info_msg,
    image_to_msg,
)

# RELIABLE, KEEP_LAST 2, VOLATILE. Why: with Fast DDS's shared-memory transport
# (config/fastdds.xml) reliable 640x480 images arrive complete at camera rate
# (benchmarks/bench_image_latency.py), while BEST_EFFORT lost most 640x480 frames over default UDP.
# A RELIABLE writer also matches both RELIABLE subscribers (recorder, rviz) and BEST_EFFORT ones
# (sensor-data QoS); a BEST_EFFORT writer only the latter. KEEP_LAST 2: a slow subscriber gets the
# newest frames instead of a growing backlog.
IMAGE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=2,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def camera_topics(prefix: str) -> dict[str, str]:
    """The four relative topic names of camera ``prefix`` (e.g. ``camera``, ``wrist_camera``)."""
    prefix = prefix.strip("/")
    return {
        key: f"{prefix}/{suffix}" if prefix else suffix
        for key, suffix in (
            ("color", COLOR_IMAGE),
            ("color_info", COLOR_INFO),
            ("depth", DEPTH_IMAGE),
            ("depth_info", DEPTH_INFO),
        )
    }


class CameraPublisher:
    """Publishers of one camera: ``<prefix>/color/...``, ``<prefix>/aligned_depth_to_color/...``.

    ``frame_id`` is the colour camera's optical frame; aligned depth is expressed in the colour
    camera, so realsense2_camera stamps it with the same frame, and so does this class. Names are
    relative, so a node's namespace (``/r1``) prefixes them. Not a node: the RealSense node and the
    sim bridge each own one per camera.
    """

    def __init__(self, node: Node, prefix: str, frame_id: str, qos: QoSProfile = IMAGE_QOS) -> None:
        self.frame_id = frame_id
        self.topics = camera_topics(prefix)
        self.color = node.create_publisher(Image, self.topics["color"], qos)
        self.color_info = node.create_publisher(CameraInfo, self.topics["color_info"], qos)
        self.depth = node.create_publisher(Image, self.topics["depth"], qos)
        self.depth_info = node.create_publisher(CameraInfo, self.topics["depth_info"], qos)
        self.published = 0

    def publish(self, frame: CameraFrame, stamp: Time) -> None:
        """Publish one frame, every topic with the same ``stamp``; depth only if the frame has it.

        Images nobody subscribes to are not converted: the copy into a message is the main cost
        of publishing on a two-core machine.
        """
        info = camera_info_msg(frame.intrinsics, stamp, self.frame_id)
        if self.color.get_subscription_count() > 0:
            self.color.publish(image_to_msg(frame.color, COLOR_ENCODING, stamp, self.frame_id))
        self.color_info.publish(info)
        if frame.depth is not None:
            if self.depth.get_subscription_count() > 0:
                self.depth.publish(image_to_msg(frame.depth, DEPTH_ENCODING, stamp, self.frame_id))
            self.depth_info.publish(info)
        self.published += 1

    def destroy(self, node: Node) -> None:
        """Remove the publishers from ``node`` (for nodes that reconfigure their cameras)."""
        for publisher in (self.color, self.color_info, self.depth, self.depth_info):
            node.destroy_publisher(publisher)
