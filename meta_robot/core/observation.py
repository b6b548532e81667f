"""The one observation schema: what every model sees and every producer of observations must give.

Cameras and their topics, the image size and preprocessing, the proprioceptive state vector, the
action vector and the control rate are defined here once. The policy server, the classifier node,
the dataset (recorded rosbags and the data engine's stored simulator states alike) and the engine's
in-process rollouts all build their inputs with :func:`state_vector` and :func:`prepare_image`, so
what a model sees in training is, to the byte, what it is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from meta_robot.core.arm import ArmState

# --- cameras ----------------------------------------------------------------------------------------
CAMERAS = ("front", "wrist")
# RealSense-style topic prefix of each camera (relative names, so a namespace can hold two robots).
CAMERA_NAMESPACES: Mapping[str, str] = {"front": "camera", "wrist": "wrist_camera"}
# realsense2_camera's topics under a camera's namespace (the RealSense node and the sim bridge publish
# them for any prefix, so they are kept apart from the namespaces).
COLOR_IMAGE = "color/image_raw"
COLOR_INFO = "color/camera_info"
DEPTH_IMAGE = "aligned_depth_to_color/image_raw"
DEPTH_INFO = "aligned_depth_to_color/camera_info"


def color_topic(camera: str) -> str:
    """``camera/color/image_raw`` for the front camera, ``wrist_camera/...`` for the wrist."""
    return f"{_namespace(camera)}/{COLOR_IMAGE}"


def depth_topic(camera: str) -> str:
    return f"{_namespace(camera)}/{DEPTH_IMAGE}"


def camera_info_topic(camera: str) -> str:
    return f"{_namespace(camera)}/{COLOR_INFO}"


def _namespace(camera: str) -> str:
    if camera not in CAMERA_NAMESPACES:
        raise ValueError(f"unknown camera {camera!r}; cameras: {list(CAMERA_NAMESPACES)}")
    return CAMERA_NAMESPACES[camera]


# --- rates and sizes ----------------------------------------------------------------------------------
CONTROL_RATE = 10.0  # Hz: a learned policy acts, and a dataset step is taken, this often
IMAGE_SIZE = (64, 64)  # (height, width) the shipped models see; datasets are rendered at it

# --- state and action vectors -------------------------------------------------------------------------
NUM_JOINTS = 7
STATE_NAMES = (
    *(f"joint{i + 1}.pos" for i in range(NUM_JOINTS)),
    "gripper.width",
    "tcp.x",
    "tcp.y",
    "tcp.z",
    "tcp.qx",
    "tcp.qy",
    "tcp.qz",
    "tcp.qw",
)
STATE_DIM = len(STATE_NAMES)  # 15: joints [rad], gripper width [m], TCP position [m] + xyzw
ACTION_NAMES = (
    "target.x",
    "target.y",
    "target.z",
    "target.qx",
    "target.qy",
    "target.qz",
    "target.qw",
    "gripper.width",
)
ACTION_DIM = len(ACTION_NAMES)  # 8: absolute TCP target in the base frame + gripper width [m]
TCP_POSITION = slice(8, 11)  # where the TCP pose sits in the state vector
TCP_ORIENTATION = slice(11, 15)


def state_vector(
    joint_positions: np.ndarray,
    gripper_width: float,
    tcp_position: np.ndarray,
    tcp_orientation: np.ndarray,
) -> np.ndarray:
    """The (15,) float32 state in :data:`STATE_NAMES` order; extra joints (fingers) are dropped."""
    joints = np.asarray(joint_positions, dtype=np.float64).reshape(-1)
    if len(joints) < NUM_JOINTS:
        raise ValueError(f"{len(joints)} joint positions, expected at least {NUM_JOINTS}")
    return np.concatenate(
        [
            joints[:NUM_JOINTS],
            [float(gripper_width)],
            np.asarray(tcp_position, dtype=np.float64).reshape(3),
            np.asarray(tcp_orientation, dtype=np.float64).reshape(4),
        ]
    ).astype(np.float32)


def state_from_arm(state: ArmState) -> np.ndarray:
    """The state vector of an arm backend's reading (what the driver publishes, unpacked)."""
    return state_vector(
        state.joint_positions, state.gripper_width, state.tcp_pose.position, state.tcp_pose.orientation
    )


def action_vector(position: np.ndarray, orientation: np.ndarray, gripper_width: float) -> np.ndarray:
    """The (8,) float32 action in :data:`ACTION_NAMES` order."""
    parts = [np.asarray(position, np.float64).reshape(3), np.asarray(orientation, np.float64).reshape(4)]
    return np.concatenate([*parts, [float(gripper_width)]]).astype(np.float32)


# --- images ---------------------------------------------------------------------------------------------
def prepare_image(image: np.ndarray, size: tuple[int, int], name: str = "image") -> np.ndarray:
    """Check an RGB uint8 (H, W, 3) image and bring it to ``size`` = (height, width) with OpenCV's
    area interpolation: the one resize every training and serving path uses."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"{name}: expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}"
        )
    if image.shape[:2] != tuple(size):
        image = cv2.resize(image, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class Observation:
    """What a model sees at one control step: RGB uint8 (H, W, 3) images by camera name, the
    :data:`STATE_DIM` proprioceptive state, and the time in seconds."""

    images: Mapping[str, np.ndarray]
    state: np.ndarray
    time: float = 0.0


def build_observation(
    images: Mapping[str, np.ndarray], state: np.ndarray, time: float, size: tuple[int, int] = IMAGE_SIZE
) -> Observation:
    """An :class:`Observation` with every camera of :data:`CAMERAS` prepared at ``size``."""
    missing = [c for c in CAMERAS if c not in images]
    if missing:
        raise ValueError(f"no image from cameras {missing} (the schema has {list(CAMERAS)})")
    state = np.asarray(state, dtype=np.float32)
    if state.shape != (STATE_DIM,):
        raise ValueError(f"state: expected {STATE_DIM} values, got shape {state.shape}")
    return Observation({c: prepare_image(images[c], size, c) for c in CAMERAS}, state, float(time))
