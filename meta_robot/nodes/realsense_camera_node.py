"""The RealSense camera node: RGB-D frames under realsense2_camera's topic names.

    realsense_camera --ros-args -p serial_number:=123456789012
    realsense_camera --ros-args -p playback_file:=/data/session.db3 -p width:=0 -p height:=0

Publishes ``<topic_prefix>/color/image_raw`` (rgb8), ``<topic_prefix>/color/camera_info``,
``<topic_prefix>/aligned_depth_to_color/image_raw`` (16UC1, mm) and its camera_info through
:class:`CameraPublisher`, exactly as the sim bridge does. A capture thread blocks on the camera and
publishes each frame as it arrives, so images leave at the stream's own rate with no timer jitter.
Without a camera (or with a missing recording) the node exits with code 2 and a one-line reason.

rclpy is imported before pyrealsense2 on purpose (see :mod:`meta_robot.camera.realsense`).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from meta_robot.camera.realsense import EndOfRecording, RealSenseCamera, RealSenseConfig
from meta_robot.core.observation import CAMERA_NAMESPACES
from meta_robot.ros.arm_messages import seconds_to_stamp
from meta_robot.ros.camera_publisher import CameraPublisher
from meta_robot.ros.entry import run_node
from meta_robot.ros.parameters import declare_config, param

POLL_S = 0.5  # s: longest the capture thread blocks before it checks whether to stop


@dataclass(frozen=True)
class CameraTopics:
    """Where the node publishes (beside the camera's RealSenseConfig)."""

    topic_prefix: str = param(CAMERA_NAMESPACES["front"], "topics are <topic_prefix>/color/image_raw, ...")
    frame_id: str = param(
        "", "colour optical frame of colour and aligned depth; empty: <topic_prefix>_color_optical_frame"
    )


class RealSenseCameraNode(Node):
    """Connects the camera in the constructor (fail fast), publishes from a capture thread."""

    def __init__(self) -> None:
        super().__init__("realsense_camera")
        config = declare_config(self, "", RealSenseConfig)
        topics = declare_config(self, "", CameraTopics)
        prefix = topics.topic_prefix
        frame_id = topics.frame_id or f"{prefix.strip('/').replace('/', '_')}_color_optical_frame"

        self.camera = RealSenseCamera(config)
        source = f"recording {config.playback_file}" if config.is_playback else "camera"
        self.get_logger().info(
            f"opening {source} (serial {config.serial_number or 'any'}): "
            f"{config.width}x{config.height}@{config.fps} (0 = any), depth {config.enable_depth}"
        )
        self.camera.connect()  # raises a clear error without a camera: run_node exits with 2
        self.publisher = CameraPublisher(self, prefix, frame_id)
        k = self.camera.intrinsics
        if k is None:
            raise RuntimeError("camera connected without intrinsics")
        self.get_logger().info(
            f"publishing {self.camera.device_name} (serial {self.camera.device_serial}) "
            f"{k.width}x{k.height} on {self.publisher.topics['color']}"
            + (f" and {self.publisher.topics['depth']}" if config.enable_depth else "")
            + f", frame '{frame_id}'"
        )
        self.finished = threading.Event()  # capture ended: recording over, camera lost or shutdown
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture, name="realsense-capture", daemon=True)

    def start(self) -> None:
        """Start the capture thread (after the node is in an executor)."""
        self._thread.start()

    def _capture(self) -> None:
        last_frame = time.monotonic()
        timeout = self.camera.config.timeout_s
        try:
            while not self._stop.is_set():
                try:
                    frame = self.camera.read(timeout_s=min(POLL_S, timeout))
                except TimeoutError:
                    if time.monotonic() - last_frame > timeout:
                        self.failure = f"no frame from the camera for {timeout:g} s"
                        self.get_logger().error(self.failure)
                        return
                    continue
                last_frame = time.monotonic()
                self.publisher.publish(frame, seconds_to_stamp(frame.stamp))
                if self.publisher.published == 1:
                    self.get_logger().info("first frame published")
        except EndOfRecording as exc:
            self.get_logger().info(f"{exc}; published {self.publisher.published} frames")
        except Exception as exc:  # reported, then the node stops
            if not self._stop.is_set() and rclpy.ok():
                self.failure = f"capture failed: {exc!r}"
                self.get_logger().error(self.failure)
        finally:
            self.finished.set()

    def shutdown(self) -> None:
        """Stop the capture thread, then the camera (in that order: the thread reads from it)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=POLL_S + 2.0)
        self.camera.disconnect()


def spin(node: RealSenseCameraNode) -> None:
    """Serve the node until shutdown or until capture ends (recording over, camera lost)."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node.start()
    try:
        while rclpy.ok() and not node.finished.is_set():
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass  # SIGINT/SIGTERM: rclpy's signal handler shut the context down
    finally:
        executor.shutdown()


def main(args: list[str] | None = None) -> None:
    """Entry point: exit 0 at the end of a recording, 1 if the camera is lost, 2 if none."""
    nodes: list[RealSenseCameraNode] = []

    def factory() -> RealSenseCameraNode:
        nodes.append(RealSenseCameraNode())
        return nodes[-1]

    code = run_node(factory, spin=spin, shutdown=RealSenseCameraNode.shutdown, args=args)
    if code == 0 and nodes and nodes[-1].failure:
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
