"""Publishes CameraFrames under realsense2_camera's topic names; used by the RealSense node and the
sim bridge alike, so perception subscribes to the same four topics on the robot and in sim."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from meta_robot.camera.frames import CameraFrame
from meta_robot.camera.ros_conversions import camera_info_msg, image_to_msg

# RELIABLE, shallow: with Fast DDS's shared-memory transport (config/fastdds.xml) images arrive
# complete at camera rate, while BEST_EFFORT lost most 640x480 frames in measurements here; depth 2
# keeps a slow subscriber from stalling the publisher behind a long queue.
IMAGE_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)


class CameraPublisher:
    """The ``<prefix>/color/...`` and ``<prefix>/aligned_depth_to_color/...`` publishers of one camera."""

    def __init__(self, node: Node, prefix: str, frame_id: str) -> None:
        self.frame_id = frame_id
        self.color = node.create_publisher(Image, f"{prefix}/color/image_raw", IMAGE_QOS)
        self.color_info = node.create_publisher(CameraInfo, f"{prefix}/color/camera_info", IMAGE_QOS)
        self.depth = node.create_publisher(Image, f"{prefix}/aligned_depth_to_color/image_raw", IMAGE_QOS)
        self.depth_info = node.create_publisher(
            CameraInfo, f"{prefix}/aligned_depth_to_color/camera_info", IMAGE_QOS
        )

    def publish(self, frame: CameraFrame, stamp: Time) -> None:
        """Publish one frame; the depth topics only when the frame has depth."""
        info = camera_info_msg(frame.intrinsics, stamp, self.frame_id)
        self.color.publish(image_to_msg(frame.color, "rgb8", stamp, self.frame_id))
        self.color_info.publish(info)
        if frame.depth is not None:
            self.depth.publish(image_to_msg(frame.depth, "16UC1", stamp, self.frame_id))
            self.depth_info.publish(info)
