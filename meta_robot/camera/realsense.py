"""An Intel RealSense camera (or a recording of one) as a source of CameraFrames.

The pipeline streams colour (rgb8) and, optionally, depth (z16); depth is aligned to the colour
camera with ``rs.align`` so that both arrays share the colour intrinsics, which is the contract of
:class:`~meta_robot.camera.frames.CameraFrame` and what realsense2_camera publishes as
``aligned_depth_to_color``. A recording (``playback_file``) plays back through the same pipeline,
which is how CI and the tests exercise this code without a camera.

No ROS here: the node in :mod:`meta_robot.nodes.realsense_camera_node` wraps it.

Caution, measured with pyrealsense2 2.59.1 and the Kilted wheels: the pyrealsense2 wheel embeds its
own Fast DDS (2.x, for realdds) and exports its symbols. A process that imports pyrealsense2 and
then rclpy segfaults at exit; importing rclpy first has exited cleanly in the node. Keep
pyrealsense2 out of ROS processes other than the camera node (tests and tools run it in a child).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyrealsense2 as rs

from meta_robot.camera.frames import DEPTH_UNITS_PER_METRE, CameraFrame, CameraIntrinsics

logger = logging.getLogger(__name__)

# Colour formats a recording may hold, and how to turn each into RGB.
_COLOR_TO_RGB = {
    rs.format.rgb8: lambda a: a,
    rs.format.bgr8: lambda a: a[..., ::-1],
    rs.format.rgba8: lambda a: a[..., :3],
    rs.format.bgra8: lambda a: a[..., 2::-1],
}
# Timestamp domains that are already on the host's wall clock (librealsense "global time").
_HOST_CLOCK_DOMAINS = (rs.timestamp_domain.global_time, rs.timestamp_domain.system_time)


class EndOfRecording(Exception):
    """A recording played without repeat has no more frames."""


@dataclass(frozen=True)
class RealSenseConfig:
    """Which camera (or recording) to open and how to stream it."""

    serial_number: str = field(
        default="", metadata={"doc": "camera serial number; empty = the only/first camera found"}
    )
    playback_file: str = field(
        default="", metadata={"doc": "RealSense recording to play back instead of a camera"}
    )
    width: int = field(default=640, metadata={"doc": "colour width, pixels; 0 = any", "range": (0, 3840)})
    height: int = field(default=480, metadata={"doc": "colour height, pixels; 0 = any", "range": (0, 2160)})
    fps: int = field(default=30, metadata={"doc": "stream rate, Hz; 0 = any", "range": (0, 90)})
    enable_depth: bool = field(default=True, metadata={"doc": "stream depth aligned to colour"})
    repeat_playback: bool = field(default=True, metadata={"doc": "loop the recording (playback only)"})
    timeout_s: float = field(
        default=5.0, metadata={"doc": "s without a frame before the camera counts as lost",
                               "range": (0.1, 60.0)}
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("width", "height", "fps", "timeout_s"):
            low, high = type(self).__dataclass_fields__[name].metadata["range"]
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
        if self.serial_number and self.playback_file:
            raise ValueError("give either serial_number (a camera) or playback_file, not both")

    @property
    def is_playback(self) -> bool:
        """Whether frames come from a recording rather than a camera."""
        return bool(self.playback_file)


def connected_devices() -> list[tuple[str, str]]:
    """(name, serial number) of every RealSense device librealsense sees."""
    return [
        (d.get_info(rs.camera_info.name), d.get_info(rs.camera_info.serial_number))
        for d in rs.context().query_devices()
    ]


def intrinsics_from_rs(intrinsics: rs.intrinsics) -> CameraIntrinsics:
    """CameraIntrinsics from librealsense's; distortion named as realsense2_camera names it."""
    model = "equidistant" if intrinsics.model == rs.distortion.kannala_brandt4 else "plumb_bob"
    return CameraIntrinsics(
        width=intrinsics.width,
        height=intrinsics.height,
        fx=float(intrinsics.fx),
        fy=float(intrinsics.fy),
        cx=float(intrinsics.ppx),
        cy=float(intrinsics.ppy),
        distortion_model=model,
        distortion=tuple(float(c) for c in intrinsics.coeffs),
    )


def _describe_profiles(device: rs.device) -> str:
    """The video streams a device (or recording) offers, for error messages."""
    seen = set()
    for sensor in device.query_sensors():
        for profile in sensor.get_stream_profiles():
            if profile.is_video_stream_profile():
                v = profile.as_video_stream_profile()
                seen.add(
                    f"{profile.stream_type().name} {v.width()}x{v.height()}@{profile.fps()} "
                    f"{profile.format().name}"
                )
    return ", ".join(sorted(seen)) or "no video streams"


class RealSenseCamera:
    """connect / read / disconnect around a pyrealsense2 pipeline; frames as CameraFrames."""

    def __init__(self, config: RealSenseConfig) -> None:
        self.config = config
        self._pipeline: rs.pipeline | None = None
        self._align: rs.align | None = None
        self._playback: rs.playback | None = None
        self._depth_to_mm = 1.0
        self._max_skew_ms = 50.0
        self.skipped = 0  # framesets dropped as incomplete or mismatched
        self.intrinsics: CameraIntrinsics | None = None
        self.device_name = ""
        self.device_serial = ""

    @property
    def is_connected(self) -> bool:
        """Whether the pipeline is streaming."""
        return self._pipeline is not None

    def connect(self) -> None:
        """Open the camera or recording and start streaming; clear errors if that is impossible.

        Raises FileNotFoundError (no recording at ``playback_file``), RuntimeError (no matching
        camera; the message lists what was found) or ValueError (the stream format asked for is
        not offered; the message lists what is).
        """
        if self._pipeline is not None:
            return
        cfg = self.config
        rs_config = rs.config()
        if cfg.is_playback:
            path = Path(cfg.playback_file).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"RealSense recording not found: {path}")
            rs_config.enable_device_from_file(str(path), repeat_playback=cfg.repeat_playback)
            # A recording holds whatever colour format it was made with; convert in read().
            color_format = rs.format.any
            what = f"recording {path}"
        else:
            devices = connected_devices()
            found = ", ".join(f"{name} (serial {serial})" for name, serial in devices) or "none"
            wanted = f"serial {cfg.serial_number}" if cfg.serial_number else "any serial"
            if not devices or (cfg.serial_number and cfg.serial_number not in {s for _, s in devices}):
                raise RuntimeError(
                    f"no RealSense camera with {wanted} connected; connected RealSense devices: {found}"
                )
            if cfg.serial_number:
                rs_config.enable_device(cfg.serial_number)
            color_format = rs.format.rgb8
            what = f"camera {cfg.serial_number or devices[0][1]}"
        rs_config.enable_stream(rs.stream.color, cfg.width, cfg.height, color_format, cfg.fps)
        if cfg.enable_depth:
            rs_config.enable_stream(rs.stream.depth, cfg.width, cfg.height, rs.format.z16, cfg.fps)

        pipeline = rs.pipeline()
        if not rs_config.can_resolve(pipeline):
            raise ValueError(self._unsupported(what, rs_config, pipeline))
        try:
            profile = pipeline.start(rs_config)
        except RuntimeError as exc:
            raise RuntimeError(f"could not start {what}: {exc}") from exc

        device = profile.get_device()
        self.device_name = device.get_info(rs.camera_info.name)
        self.device_serial = device.get_info(rs.camera_info.serial_number)
        color_profile = profile.get_stream(rs.stream.color).as_video_stream_profile()
        if color_profile.format() not in _COLOR_TO_RGB:
            pipeline.stop()
            raise ValueError(
                f"{what}: colour format {color_profile.format().name} is not supported "
                f"(supported: {sorted(f.name for f in _COLOR_TO_RGB)})"
            )
        self.intrinsics = intrinsics_from_rs(color_profile.get_intrinsics())
        self._max_skew_ms = 1.5 * 1000.0 / max(color_profile.fps(), 1)  # 1.5 frame periods
        if cfg.enable_depth:
            scale = device.first_depth_sensor().get_depth_scale()  # metres per z16 unit
            self._depth_to_mm = scale * DEPTH_UNITS_PER_METRE
            self._align = rs.align(rs.stream.color)
        if device.is_playback():
            self._playback = device.as_playback()
        self._pipeline = pipeline
        logger.info(
            "streaming %s (%s, serial %s): colour %dx%d@%d %s%s",
            what, self.device_name, self.device_serial, self.intrinsics.width,
            self.intrinsics.height, color_profile.fps(), color_profile.format().name,
            ", depth aligned to colour" if cfg.enable_depth else "",
        )  # fmt: skip

    def _unsupported(self, what: str, rs_config: rs.config, pipeline: rs.pipeline) -> str:
        cfg = self.config
        asked = f"colour{' + depth' if cfg.enable_depth else ''} {cfg.width}x{cfg.height}@{cfg.fps}"
        try:
            if cfg.is_playback:
                offered = _describe_profiles(rs.context().load_device(cfg.playback_file))
            else:
                rs_any = rs.config()
                if cfg.serial_number:
                    rs_any.enable_device(cfg.serial_number)
                offered = _describe_profiles(rs_any.resolve(pipeline).get_device())
        except RuntimeError as exc:
            offered = f"(could not list: {exc})"
        return f"{what} does not offer {asked} (0 = any); it offers: {offered}"

    def read(self, timeout_s: float | None = None) -> CameraFrame:
        """The next complete frame (blocking).

        TimeoutError if none arrives within ``timeout_s`` (default: config.timeout_s);
        EndOfRecording when a non-repeating playback has ended. Framesets that lack a stream, or
        whose colour and depth are more than a frame period apart (the syncer pairs the last
        colour frame of a looping recording with the first depth frame), are skipped: a
        mismatched pair would put depth from one moment under colour from another.
        """
        if self._pipeline is None or self.intrinsics is None:
            raise RuntimeError("RealSenseCamera.read() before connect()")
        timeout = self.config.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        while True:
            remaining_ms = max(1, round(1000 * (deadline - time.monotonic())))
            ok, frames = self._pipeline.try_wait_for_frames(remaining_ms)
            arrival = time.time()
            if not ok:
                if (
                    self._playback is not None
                    and not self.config.repeat_playback
                    and self._playback.current_status() == rs.playback_status.stopped
                ):
                    raise EndOfRecording(f"recording {self.config.playback_file} has ended")
                raise TimeoutError(f"no frame from {self.device_name} within {timeout:g} s")
            frame = self._to_frame(frames, arrival)
            if frame is not None:
                return frame
            self.skipped += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"no complete frame from {self.device_name} in {timeout:g} s")

    def _to_frame(self, frames: rs.composite_frame, arrival: float) -> CameraFrame | None:
        """A CameraFrame from a frameset, or None if the set is incomplete or mismatched."""
        color_frame = frames.get_color_frame()
        if not color_frame:
            return None
        depth = None
        if self._align is not None:
            depth_frame = frames.get_depth_frame()
            if not depth_frame:
                return None
            skew_ms = abs(color_frame.get_timestamp() - depth_frame.get_timestamp())
            if skew_ms > self._max_skew_ms:
                logger.debug("skipping a frameset: colour and depth %.1f ms apart", skew_ms)
                return None
            aligned = self._align.process(frames).get_depth_frame()
            raw = np.asanyarray(aligned.get_data())
            if abs(self._depth_to_mm - 1.0) < 1e-6:
                depth = raw.copy()
            else:  # e.g. D405 (0.1 mm units): convert to the contract's millimetres
                depth = np.clip(np.rint(raw * self._depth_to_mm), 0, 65535).astype(np.uint16)
        to_rgb = _COLOR_TO_RGB[color_frame.get_profile().format()]
        color = np.ascontiguousarray(to_rgb(np.asanyarray(color_frame.get_data())))
        if not color.flags.owndata:
            color = color.copy()  # never keep a view into librealsense's frame buffer
        # Stamp on the host clock: a live camera's global-time stamps are; a recording's are not.
        stamp = arrival
        domain = color_frame.get_frame_timestamp_domain()
        if self._playback is None and domain in _HOST_CLOCK_DOMAINS:
            stamp = color_frame.get_timestamp() / 1000.0
        return CameraFrame(stamp=stamp, color=color, depth=depth, intrinsics=self.intrinsics)

    def disconnect(self) -> None:
        """Stop streaming; safe to call twice or without connect()."""
        pipeline, self._pipeline = self._pipeline, None
        self._align = None
        self._playback = None
        if pipeline is not None:
            try:
                pipeline.stop()
            except RuntimeError as exc:  # already stopped by librealsense (device lost)
                logger.warning("stopping the RealSense pipeline: %s", exc)

    def __enter__(self) -> RealSenseCamera:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
