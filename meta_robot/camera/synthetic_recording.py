"""Writes RealSense recordings from synthetic frames, so the camera path runs without a camera.

librealsense's software device plays the part of a D400: a depth sensor (z16, 1 mm units) and a
colour sensor (rgb8) with the same known intrinsics and identity extrinsics, so ``rs.align`` maps
each depth pixel onto the colour pixel of the same index. ``rs.recorder`` writes what it streams to
a file that ``config.enable_device_from_file`` plays back through the ordinary pipeline. Every frame
has known content (see :func:`synthetic_color`, :func:`synthetic_depth`) with its index encoded in
the blue channel, so a test can check any frame it receives against what was recorded.

pyrealsense2 is imported only to write: its wheel embeds its own Fast DDS, and a process that has
loaded it and rclpy's Fast DDS can crash at exit (see :mod:`meta_robot.camera.realsense`), so the
pattern functions must stay usable in ROS processes. From a shell or a ROS test, write with

    python -m meta_robot.camera.synthetic_recording out.db3 --width 64 --height 48 --frames 30
"""

from __future__ import annotations

import argparse
import gc
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from meta_robot.camera.frames import CameraIntrinsics

if TYPE_CHECKING:
    import pyrealsense2 as rs

logger = logging.getLogger(__name__)

DEPTH_UNITS_M = 0.001  # z16 units of the recorded depth sensor: millimetres, like a D400
DEPTH_BASE_MM = 500
DEPTH_MM_PER_INDEX = 10
SERIAL_NUMBER = "000000000000"  # what the recording's device reports as its serial number


def synthetic_intrinsics(width: int, height: int) -> CameraIntrinsics:
    """Plausible pinhole intrinsics (a D435-like field of view)."""
    return CameraIntrinsics(
        width=width,
        height=height,
        fx=0.96 * width,
        fy=0.96 * width,
        cx=(width - 1) / 2 + 0.25,
        cy=(height - 1) / 2 - 0.25,
        distortion_model="plumb_bob",
        distortion=(0.0, 0.0, 0.0, 0.0, 0.0),
    )


def synthetic_color(index: int, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB: red = x gradient, green = y gradient, blue = frame index % 256."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = (np.arange(width) * 255 // max(width - 1, 1)).astype(np.uint8)[None, :]
    image[..., 1] = (np.arange(height) * 255 // max(height - 1, 1)).astype(np.uint8)[:, None]
    image[..., 2] = index % 256
    return image


def synthetic_depth(index: int, width: int, height: int) -> np.ndarray:
    """(H, W) uint16 mm: a ramp from 0.5 m rising 2 mm per column and 1 mm per row, + 10 mm per
    frame index (mod 256), so consecutive frames differ by more than alignment's resampling."""
    cols = np.arange(width, dtype=np.int64)[None, :]
    rows = np.arange(height, dtype=np.int64)[:, None]
    depth = DEPTH_BASE_MM + 2 * cols + rows + DEPTH_MM_PER_INDEX * (index % 256)
    return np.minimum(depth, np.iinfo(np.uint16).max).astype(np.uint16)


def decode_frame_index(color: np.ndarray) -> int:
    """The frame index (mod 256) that :func:`synthetic_color` encoded in an image."""
    values = np.unique(color[..., 2])
    if values.size != 1:
        raise ValueError(f"not a synthetic frame: blue channel holds {values.size} values")
    return int(values[0])


def _rs_intrinsics(k: CameraIntrinsics) -> rs.intrinsics:
    import pyrealsense2 as rs

    intrinsics = rs.intrinsics()
    intrinsics.width, intrinsics.height = k.width, k.height
    intrinsics.fx, intrinsics.fy, intrinsics.ppx, intrinsics.ppy = k.fx, k.fy, k.cx, k.cy
    intrinsics.model = rs.distortion.brown_conrady
    intrinsics.coeffs = [float(c) for c in k.distortion]
    return intrinsics


def _video_stream(
    kind: rs.stream, uid: int, fmt: rs.format, bpp: int, fps: int, k: CameraIntrinsics
) -> rs.video_stream:
    import pyrealsense2 as rs

    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = kind, 0, uid
    stream.width, stream.height, stream.fps = k.width, k.height, fps
    stream.bpp, stream.fmt = bpp, fmt
    stream.intrinsics = _rs_intrinsics(k)
    return stream


def _video_frame(
    pixels: np.ndarray, profile: rs.stream_profile, index: int, timestamp_ms: float
) -> rs.software_video_frame:
    import pyrealsense2 as rs

    frame = rs.software_video_frame()
    frame.pixels = np.ascontiguousarray(pixels)
    frame.bpp = pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1)
    frame.stride = pixels.strides[0]
    frame.timestamp = timestamp_ms
    frame.domain = rs.timestamp_domain.hardware_clock
    frame.frame_number = index
    frame.profile = profile.as_video_stream_profile()
    return frame


def write_synthetic_recording(
    path: str | Path,
    width: int = 64,
    height: int = 48,
    fps: int = 30,
    frames: int = 30,
    intrinsics: CameraIntrinsics | None = None,
) -> CameraIntrinsics:
    """Record ``frames`` synthetic RGB-D frames to ``path``; returns the recorded intrinsics.

    Frame ``i`` holds ``synthetic_color(i, ...)`` and ``synthetic_depth(i, ...)`` with timestamp
    ``i / fps`` s. Writing takes ``frames / fps`` s: the recorder keeps arrival times and real-time
    playback replays them. Playback may drop the first frame or two (the syncer warms up).
    """
    import pyrealsense2 as rs

    if not (width > 0 and height > 0 and fps > 0 and frames > 0):
        raise ValueError(f"need positive size, fps and frame count, got {width}x{height} "
                         f"@ {fps} Hz, {frames} frames")  # fmt: skip
    intrinsics = intrinsics or synthetic_intrinsics(width, height)
    if (intrinsics.width, intrinsics.height) != (width, height):
        raise ValueError(f"intrinsics are {intrinsics.width}x{intrinsics.height}, "
                         f"frames {width}x{height}")  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()  # the recorder appends to nothing; an old file would only confuse playback

    device = rs.software_device()
    device.register_info(rs.camera_info.name, "meta_robot synthetic RGB-D")
    device.register_info(rs.camera_info.serial_number, SERIAL_NUMBER)
    depth_sensor = device.add_sensor("Stereo Module")
    color_sensor = device.add_sensor("RGB Camera")
    depth_profile = depth_sensor.add_video_stream(
        _video_stream(rs.stream.depth, 0, rs.format.z16, 2, fps, intrinsics)
    )
    color_profile = color_sensor.add_video_stream(
        _video_stream(rs.stream.color, 1, rs.format.rgb8, 3, fps, intrinsics)
    )
    depth_sensor.add_read_only_option(rs.option.depth_units, DEPTH_UNITS_M)
    identity = rs.extrinsics()
    identity.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    identity.translation = [0.0, 0.0, 0.0]
    depth_profile.register_extrinsics_to(color_profile, identity)

    recorder = rs.recorder(str(path), device)
    queue = rs.frame_queue(4)  # the recorder taps the sensors; the queue only has to exist
    depth_sensor.open(depth_profile)
    color_sensor.open(color_profile)
    depth_sensor.start(queue)
    color_sensor.start(queue)
    start = time.monotonic()
    try:
        for i in range(frames):
            # The recorder files frames by arrival time, and playback replays that timing: pace.
            time.sleep(max(0.0, start + i / fps - time.monotonic()))
            timestamp_ms = i * 1000.0 / fps
            depth_frame = _video_frame(synthetic_depth(i, width, height), depth_profile, i,
                                       timestamp_ms)  # fmt: skip
            depth_frame.depth_units = DEPTH_UNITS_M
            depth_sensor.on_video_frame(depth_frame)
            color_frame = _video_frame(synthetic_color(i, width, height), color_profile, i,
                                       timestamp_ms)  # fmt: skip
            color_sensor.on_video_frame(color_frame)
            while queue.poll_for_frame():
                pass  # drain: the queue only holds 4 frames
    finally:
        depth_sensor.stop()
        color_sensor.stop()
        depth_sensor.close()
        color_sensor.close()
        # The recorder finishes the file when it is destroyed; drop every reference to it now.
        del recorder, queue
        gc.collect()
    logger.info("wrote %d synthetic %dx%d frames at %d Hz to %s", frames, width, height, fps, path)
    return intrinsics


def main(argv: list[str] | None = None) -> None:
    """CLI: write a synthetic recording (used by ROS tests, which must not load pyrealsense2)."""
    parser = argparse.ArgumentParser(description="Write a synthetic RealSense RGB-D recording.")
    parser.add_argument("path", type=Path, help="output file (.db3)")
    parser.add_argument("--width", type=int, default=64, help="pixels")
    parser.add_argument("--height", type=int, default=48, help="pixels")
    parser.add_argument("--fps", type=int, default=30, help="Hz")
    parser.add_argument("--frames", type=int, default=30, help="number of frames")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_synthetic_recording(args.path, args.width, args.height, args.fps, args.frames)


if __name__ == "__main__":
    main()
