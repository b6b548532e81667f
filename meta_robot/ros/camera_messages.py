"""CameraFrame <-> sensor_msgs Image / CameraInfo, without cv_bridge (not in the PyPI wheels).

Encodings follow realsense2_camera: colour ``rgb8``, aligned depth ``16UC1`` in millimetres. The
reverse direction is :mod:`meta_robot.camera.image_decoding` (no rclpy there, so the dataset decodes
recorded images with the same code); its functions are importable from here too.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image

from meta_robot.camera.frames import CameraFrame, CameraIntrinsics
from meta_robot.camera.image_decoding import COLOR_ENCODING as COLOR_ENCODING  # re-exported
from meta_robot.camera.image_decoding import DEPTH_ENCODING, ENCODINGS, color_from_msg, image_from_msg
from meta_robot.camera.image_decoding import depth_from_msg as depth_from_msg

_IDENTITY_R = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def image_to_msg(array: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """sensor_msgs/Image from an (H, W[, C]) array in ``encoding`` (little-endian, packed rows)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding '{encoding}'; supported: {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    array = np.ascontiguousarray(array)
    expected_ndim = 3 if channels > 1 else 2
    if array.dtype != dtype or array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ValueError(
            f"{encoding} needs an (H, W{f', {channels}' if channels > 1 else ''}) {np.dtype(dtype)} array, "
            f"got {array.shape} {array.dtype}"
        )
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(array.strides[0])
    msg.data = array.tobytes()
    return msg


def camera_info_msg(intrinsics: CameraIntrinsics, stamp: Time, frame_id: str) -> CameraInfo:
    """sensor_msgs/CameraInfo (K, P, D, R) of a pinhole camera, as realsense2_camera fills it."""
    k = intrinsics
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = k.width, k.height
    msg.distortion_model = k.distortion_model
    msg.d = [float(v) for v in k.distortion]
    msg.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    msg.r = list(_IDENTITY_R)  # monocular: no rectification
    msg.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def intrinsics_from_msg(msg: CameraInfo) -> CameraIntrinsics:
    """CameraIntrinsics from a CameraInfo message (ValueError if it holds no calibration)."""
    if msg.k[0] <= 0.0 or msg.k[4] <= 0.0:
        raise ValueError(f"camera_info has no calibration (K = {list(msg.k)})")
    return CameraIntrinsics(
        width=int(msg.width),
        height=int(msg.height),
        fx=float(msg.k[0]),
        fy=float(msg.k[4]),
        cx=float(msg.k[2]),
        cy=float(msg.k[5]),
        distortion_model=msg.distortion_model,
        distortion=tuple(float(v) for v in msg.d),
    )


def frame_from_msgs(color: Image, info: CameraInfo, depth: Image | None = None) -> CameraFrame:
    """A CameraFrame from one colour image, its camera_info and (optionally) the aligned depth."""
    intrinsics = intrinsics_from_msg(info)
    size = (intrinsics.width, intrinsics.height)
    color_array = color_from_msg(color)
    if (color.width, color.height) != size:
        raise ValueError(f"colour image is {color.width}x{color.height}, camera_info says {size}")
    depth_array = None
    if depth is not None:
        depth_array = image_from_msg(depth, DEPTH_ENCODING, expected_size=size)
    stamp = color.header.stamp.sec + color.header.stamp.nanosec * 1e-9
    return CameraFrame(stamp=stamp, color=color_array, depth=depth_array, intrinsics=intrinsics)
