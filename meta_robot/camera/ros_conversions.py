"""CameraFrame <-> sensor_msgs Image / CameraInfo, without cv_bridge (not in the PyPI wheels).

Encodings follow realsense2_camera: colour ``rgb8``, aligned depth ``16UC1`` in millimetres.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image

from meta_robot.camera.frames import CameraIntrinsics

ENCODINGS = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "mono8": (np.uint8, 1), "16UC1": (np.uint16, 1)}


def image_to_msg(array: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """sensor_msgs/Image from an (H, W[, C]) array in ``encoding``."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding '{encoding}'; supported: {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    array = np.ascontiguousarray(array)
    expected = 3 if channels > 1 else 2
    if array.dtype != dtype or array.ndim != expected or (channels > 1 and array.shape[2] != channels):
        raise ValueError(
            f"{encoding} needs an (H, W{', 3' if channels > 1 else ''}) {np.dtype(dtype)} array, "
            f"got {array.shape} {array.dtype}"
        )
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(array.strides[0])
    msg.data = array.tobytes()
    return msg


def image_from_msg(msg: Image, expected_encoding: str | None = None) -> np.ndarray:
    """An (H, W[, C]) array viewing the message's bytes, with a clear error on a malformed image."""
    if expected_encoding is not None and msg.encoding != expected_encoding:
        raise ValueError(f"expected a {expected_encoding} image, got '{msg.encoding}'")
    if msg.encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding '{msg.encoding}'; supported: {sorted(ENCODINGS)}")
    dtype, channels = ENCODINGS[msg.encoding]
    itemsize = np.dtype(dtype).itemsize
    row = msg.width * channels * itemsize
    if msg.step < row or len(msg.data) != msg.step * msg.height:
        raise ValueError(
            f"malformed {msg.encoding} image: {msg.width}x{msg.height}, step {msg.step}, "
            f"{len(msg.data)} bytes"
        )
    buffer = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)[:, :row]
    array = buffer.copy().view(dtype)
    if msg.is_bigendian != (np.dtype(dtype).byteorder == ">"):
        array = array.byteswap() if itemsize > 1 else array
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return array.reshape(shape)


def camera_info_msg(intrinsics: CameraIntrinsics, stamp: Time, frame_id: str) -> CameraInfo:
    """sensor_msgs/CameraInfo (K, P, D, R) of a pinhole camera."""
    k = intrinsics
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = k.width, k.height
    msg.distortion_model = k.distortion_model
    msg.d = [float(v) for v in k.distortion]
    msg.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def intrinsics_from_msg(msg: CameraInfo) -> CameraIntrinsics:
    """CameraIntrinsics from a CameraInfo message."""
    return CameraIntrinsics(
        width=msg.width, height=msg.height, fx=msg.k[0], fy=msg.k[4], cx=msg.k[2], cy=msg.k[5],
        distortion_model=msg.distortion_model, distortion=tuple(msg.d),
    )  # fmt: skip
