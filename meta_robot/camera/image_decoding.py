"""sensor_msgs/Image -> numpy, for rclpy messages and rosbags-deserialized ones alike.

Both kinds carry ``encoding``, ``height``, ``width``, ``step``, ``is_bigendian`` and ``data`` (bytes or
an array.array from rclpy, a uint8 numpy array from rosbags), so one duck-typed decoder serves the
live nodes (policy server, classifier, live view) and the recorded dataset, and nothing here imports
rclpy. Checks say exactly what is wrong: a silently misread image is much harder to debug than a
ValueError. Resizing for a model is :func:`~meta_robot.core.observation.prepare_image`'s, the one
resize every training and serving path uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meta_robot.core.observation import prepare_image

COLOR_ENCODING = "rgb8"  # what realsense2_camera and the sim bridge publish
DEPTH_ENCODING = "16UC1"  # aligned depth, millimetres
# encoding -> (dtype, channels)
ENCODINGS: dict[str, tuple[type[np.generic], int]] = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4),
    "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1),
    "16UC1": (np.uint16, 1),
    "mono16": (np.uint16, 1),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")  # decoded to RGB (alpha dropped)


def image_from_msg(
    msg: Any,
    expected_encoding: str | None = None,
    expected_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """A fresh (H, W[, C]) array from an Image; ValueError on a wrong encoding, size or layout.

    ``expected_size`` is (width, height), as in CameraInfo.
    """
    if expected_encoding is not None and msg.encoding != expected_encoding:
        raise ValueError(f"expected a {expected_encoding} image, got '{msg.encoding}'")
    if msg.encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding '{msg.encoding}'; supported: {sorted(ENCODINGS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if expected_size is not None and (width, height) != tuple(expected_size):
        raise ValueError(f"expected a {expected_size[0]}x{expected_size[1]} image, got {width}x{height}")
    dtype, channels = ENCODINGS[msg.encoding]
    row = width * channels * np.dtype(dtype).itemsize
    if step < row or len(msg.data) != step * height:
        raise ValueError(
            f"malformed {msg.encoding} image: {width}x{height}, step {step} "
            f"(at least {row} needed), {len(msg.data)} bytes (step x height needed)"
        )
    # msg.data supports the buffer protocol (bytes, array.array, numpy): one copy, into an array we own.
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)[:, :row]
    byteorder = ">" if msg.is_bigendian else "<"
    array = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(byteorder))
    array = array.astype(dtype, copy=False)  # to native byte order (a no-op on little-endian data)
    shape = (height, width, channels) if channels > 1 else (height, width)
    return array.reshape(shape)


def color_from_msg(msg: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an rgb8, bgr8, rgba8 or bgra8 Image, brought to ``size`` =
    (height, width) by :func:`prepare_image` when given."""
    if msg.encoding not in COLOR_ENCODINGS:
        raise ValueError(
            f"unsupported image encoding '{msg.encoding}' for a colour image "
            f"(expected {', '.join(COLOR_ENCODINGS)})"
        )
    image = image_from_msg(msg)
    image = np.ascontiguousarray(image[..., 2::-1] if msg.encoding.startswith("bgr") else image[..., :3])
    return image if size is None else prepare_image(image, size)


def depth_from_msg(msg: Any) -> np.ndarray:
    """(H, W) uint16 millimetres from a ``16UC1`` Image."""
    return image_from_msg(msg, DEPTH_ENCODING)
