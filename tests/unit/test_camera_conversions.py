"""CameraFrame <-> sensor_msgs conversions (message types, no DDS) and the synthetic pattern."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time

from meta_robot.camera.frames import CameraFrame, CameraIntrinsics
from meta_robot.camera.synthetic_recording import (
    decode_frame_index,
    synthetic_color,
    synthetic_depth,
    synthetic_intrinsics,
)
from meta_robot.ros.camera_messages import (
    camera_info_msg,
    color_from_msg,
    depth_from_msg,
    frame_from_msgs,
    image_from_msg,
    image_to_msg,
    intrinsics_from_msg,
)
from meta_robot.ros.camera_publisher import camera_topics

STAMP = Time(sec=12, nanosec=500_000_000)
K = CameraIntrinsics(
    width=8, height=6, fx=7.5, fy=7.25, cx=3.6, cy=2.4, distortion=(0.1, -0.2, 0.001, 0.002, 0.03)
)


def test_color_round_trip_keeps_pixels_and_header():
    color = synthetic_color(7, 8, 6)
    msg = image_to_msg(color, "rgb8", STAMP, "cam_optical")
    assert (msg.width, msg.height, msg.step, msg.encoding) == (8, 6, 24, "rgb8")
    assert msg.header.frame_id == "cam_optical" and msg.header.stamp == STAMP
    back = color_from_msg(msg)
    assert back.dtype == np.uint8 and np.array_equal(back, color)


def test_depth_round_trip_keeps_millimetres():
    depth = synthetic_depth(3, 8, 6)
    depth[0, 0] = 65535
    msg = image_to_msg(depth, "16UC1", STAMP, "cam_optical")
    assert msg.step == 16 and msg.is_bigendian == 0
    assert np.array_equal(depth_from_msg(msg), depth)


def test_big_endian_depth_is_read_correctly():
    depth = synthetic_depth(0, 8, 6)
    msg = image_to_msg(depth, "16UC1", STAMP, "f")
    msg.data = depth.astype(">u2").tobytes()
    msg.is_bigendian = 1
    assert np.array_equal(depth_from_msg(msg), depth)


def test_padded_rows_are_unpadded():
    color = synthetic_color(1, 5, 3)
    msg = image_to_msg(color, "rgb8", STAMP, "f")
    padded = np.zeros((3, 20), dtype=np.uint8)
    padded[:, :15] = color.reshape(3, 15)
    msg.step, msg.data = 20, padded.tobytes()
    assert np.array_equal(color_from_msg(msg), color)


def test_bgr_is_converted_to_rgb():
    color = synthetic_color(2, 8, 6)
    msg = image_to_msg(np.ascontiguousarray(color[..., ::-1]), "bgr8", STAMP, "f")
    assert np.array_equal(color_from_msg(msg), color)


@pytest.mark.parametrize(
    ("array", "encoding", "match"),
    [
        (np.zeros((6, 8), np.uint16), "rgb8", "rgb8 needs"),
        (np.zeros((6, 8, 3), np.uint8), "16UC1", "16UC1 needs"),
        (np.zeros((6, 8), np.float32), "32FC1", "unsupported encoding"),
        (np.zeros((6, 8, 4), np.uint8), "rgb8", "rgb8 needs"),
    ],
)
def test_wrong_arrays_are_refused(array, encoding, match):
    with pytest.raises(ValueError, match=match):
        image_to_msg(array, encoding, STAMP, "f")


def test_wrong_encoding_is_a_clear_error():
    msg = image_to_msg(synthetic_depth(0, 8, 6), "16UC1", STAMP, "f")
    with pytest.raises(ValueError, match="unsupported image encoding '16UC1' for a colour image"):
        color_from_msg(msg)
    msg.encoding = "32FC1"
    with pytest.raises(ValueError, match="unsupported encoding '32FC1'"):
        image_from_msg(msg)


def test_wrong_size_is_a_clear_error():
    msg = image_to_msg(synthetic_color(0, 8, 6), "rgb8", STAMP, "f")
    with pytest.raises(ValueError, match="expected a 640x480 image, got 8x6"):
        image_from_msg(msg, "rgb8", expected_size=(640, 480))
    msg.data = bytes(len(msg.data) - 3)
    with pytest.raises(ValueError, match="malformed rgb8 image"):
        color_from_msg(msg)
    msg = image_to_msg(synthetic_color(0, 8, 6), "rgb8", STAMP, "f")
    msg.step = 20  # shorter than a row of 8 rgb8 pixels
    with pytest.raises(ValueError, match="malformed"):
        color_from_msg(msg)


def test_camera_info_round_trip():
    msg = camera_info_msg(K, STAMP, "cam_optical")
    assert (msg.width, msg.height, msg.distortion_model) == (8, 6, "plumb_bob")
    assert list(msg.k) == [7.5, 0.0, 3.6, 0.0, 7.25, 2.4, 0.0, 0.0, 1.0]
    assert list(msg.p) == [7.5, 0.0, 3.6, 0.0, 0.0, 7.25, 2.4, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert list(msg.r) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert list(msg.d) == list(K.distortion)
    assert intrinsics_from_msg(msg) == K


def test_uncalibrated_camera_info_is_refused():
    msg = camera_info_msg(K, STAMP, "f")
    msg.k = [0.0] * 9
    with pytest.raises(ValueError, match="no calibration"):
        intrinsics_from_msg(msg)


def test_frame_from_msgs_rebuilds_the_frame():
    k = synthetic_intrinsics(8, 6)
    frame = CameraFrame(12.5, synthetic_color(4, 8, 6), synthetic_depth(4, 8, 6), k)
    back = frame_from_msgs(
        image_to_msg(frame.color, "rgb8", STAMP, "f"),
        camera_info_msg(k, STAMP, "f"),
        image_to_msg(frame.depth, "16UC1", STAMP, "f"),
    )
    assert back.stamp == pytest.approx(12.5) and back.intrinsics == k
    assert np.array_equal(back.color, frame.color) and np.array_equal(back.depth, frame.depth)
    with pytest.raises(ValueError, match="expected a 8x6 image"):
        frame_from_msgs(
            image_to_msg(frame.color, "rgb8", STAMP, "f"),
            camera_info_msg(k, STAMP, "f"),
            image_to_msg(synthetic_depth(4, 4, 3), "16UC1", STAMP, "f"),
        )


def test_synthetic_frames_encode_their_index():
    for index in (0, 1, 200, 255):
        assert decode_frame_index(synthetic_color(index, 16, 12)) == index
    d0, d1 = synthetic_depth(0, 16, 12), synthetic_depth(1, 16, 12)
    assert d0.min() > 0 and (d1.astype(int) - d0 >= 10).all()
    with pytest.raises(ValueError, match="not a synthetic frame"):
        decode_frame_index(np.random.default_rng(0).integers(0, 255, (4, 4, 3), dtype=np.uint8))


def test_topic_names_follow_realsense_and_stay_relative():
    topics = camera_topics("wrist_camera")
    assert topics == {
        "color": "wrist_camera/color/image_raw",
        "color_info": "wrist_camera/color/camera_info",
        "depth": "wrist_camera/aligned_depth_to_color/image_raw",
        "depth_info": "wrist_camera/aligned_depth_to_color/camera_info",
    }
    assert not any(name.startswith("/") for name in camera_topics("/camera/").values())
