"""The camera contract shared by the RealSense node and the MuJoCo sim bridge.

A frame is what realsense2_camera publishes: an RGB image, a depth image aligned to the colour
camera (16-bit, millimetres, 0 = no data) and the colour camera's pinhole intrinsics. Producing the
same arrays from either source is what lets perception run unchanged on the robot and in sim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEPTH_UNITS_PER_METRE = 1000  # 16UC1 depth in millimetres, as realsense2_camera publishes it


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of the colour camera (pixels), with optional distortion."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "plumb_bob"
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx} fy={self.fy}")

    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CameraFrame:
    """One synchronised RGB-D capture."""

    stamp: float  # s, capture time on the source's clock
    color: np.ndarray  # (H, W, 3) uint8, RGB
    depth: np.ndarray | None  # (H, W) uint16, millimetres, aligned to colour; None if not streamed
    intrinsics: CameraIntrinsics

    def __post_init__(self) -> None:
        h, w = self.intrinsics.height, self.intrinsics.width
        if self.color.shape != (h, w, 3) or self.color.dtype != np.uint8:
            raise ValueError(
                f"colour image must be ({h}, {w}, 3) uint8, got {self.color.shape} {self.color.dtype}"
            )
        if self.depth is not None and (self.depth.shape != (h, w) or self.depth.dtype != np.uint16):
            raise ValueError(
                f"depth image must be ({h}, {w}) uint16, got {self.depth.shape} {self.depth.dtype}"
            )


def depth_metres_to_mm(depth_m: np.ndarray, max_range_m: float = 10.0) -> np.ndarray:
    """Convert float depth in metres to 16UC1 millimetres; invalid or out-of-range pixels become 0."""
    depth = np.asarray(depth_m, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0.0) & (depth < max_range_m)
    out = np.zeros(depth.shape, dtype=np.uint16)
    out[valid] = np.round(depth[valid] * DEPTH_UNITS_PER_METRE).astype(np.uint16)
    return out
