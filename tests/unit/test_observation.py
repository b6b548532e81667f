"""The observation schema (core/observation.py) and the one image decoder every path shares."""

from __future__ import annotations

import numpy as np
import pytest

from meta_robot.camera.image_decoding import color_from_msg, depth_from_msg, image_from_msg
from meta_robot.core.arm import ArmState, Pose
from meta_robot.core.observation import (
    ACTION_DIM,
    ACTION_NAMES,
    CAMERAS,
    IMAGE_SIZE,
    STATE_DIM,
    STATE_NAMES,
    TCP_ORIENTATION,
    TCP_POSITION,
    action_vector,
    build_observation,
    camera_info_topic,
    color_topic,
    depth_topic,
    prepare_image,
    state_from_arm,
    state_vector,
)

JOINTS = np.array([0.1, -0.2, 0.3, -1.4, 0.5, 1.6, 0.7])
TCP = np.array([0.45, -0.05, 0.3])
QUAT = np.array([1.0, 0.0, 0.0, 0.0])


def test_state_vector_is_joints_gripper_then_tcp_pose_in_float32():
    state = state_vector(JOINTS, 0.04, TCP, QUAT)
    assert state.dtype == np.float32 and state.shape == (STATE_DIM,) == (len(STATE_NAMES),)
    named = dict(zip(STATE_NAMES, state, strict=True))
    assert [named[f"joint{i + 1}.pos"] for i in range(7)] == pytest.approx(JOINTS)
    assert named["gripper.width"] == pytest.approx(0.04)
    assert np.array_equal(state[TCP_POSITION], TCP.astype(np.float32))
    assert np.array_equal(state[TCP_ORIENTATION], QUAT.astype(np.float32))
    assert STATE_NAMES[TCP_POSITION] == ("tcp.x", "tcp.y", "tcp.z")


def test_state_vector_drops_finger_joints_and_refuses_too_few():
    with_fingers = np.concatenate([JOINTS, [0.02, 0.02]])
    assert np.array_equal(state_vector(with_fingers, 0.04, TCP, QUAT), state_vector(JOINTS, 0.04, TCP, QUAT))
    with pytest.raises(ValueError, match="6 joint positions, expected at least 7"):
        state_vector(JOINTS[:6], 0.04, TCP, QUAT)
    with pytest.raises(ValueError):
        state_vector(JOINTS, 0.04, TCP[:2], QUAT)  # a TCP position is 3 values
    with pytest.raises(ValueError):
        state_vector(JOINTS, 0.04, TCP, QUAT[:3])


def test_state_from_arm_reads_the_arm_state():
    arm = ArmState(
        stamp=1.0,
        joint_positions=JOINTS,
        joint_velocities=np.zeros(7),
        tcp_pose=Pose(TCP, QUAT),
        tcp_linear_velocity=np.zeros(3),
        gripper_width=0.03,
        gripper_grasped=False,
        external_force=np.zeros(3),
        finger_positions=np.array([0.015, 0.015]),
    )
    assert np.array_equal(state_from_arm(arm), state_vector(JOINTS, 0.03, TCP, QUAT))


def test_action_vector_order():
    action = action_vector(TCP, QUAT, 0.08)
    assert action.dtype == np.float32 and action.shape == (ACTION_DIM,) == (len(ACTION_NAMES),)
    assert np.array_equal(action, np.array([*TCP, *QUAT, 0.08], dtype=np.float32))


def test_topics_follow_realsense_names_and_stay_relative():
    assert color_topic("front") == "camera/color/image_raw"
    assert depth_topic("wrist") == "wrist_camera/aligned_depth_to_color/image_raw"
    assert camera_info_topic("wrist") == "wrist_camera/color/camera_info"
    with pytest.raises(ValueError, match="unknown camera 'side'"):
        color_topic("side")


def test_prepare_image_resizes_with_area_interpolation_and_keeps_the_right_size():
    image = np.zeros((128, 128, 3), np.uint8)
    image[:, 64:] = 200  # right half bright: area averaging keeps the edge sharp at half size
    small = prepare_image(image, (64, 64))
    assert small.shape == (64, 64, 3) and small.dtype == np.uint8 and small.flags.c_contiguous
    assert (small[:, :32] == 0).all() and (small[:, 32:] == 200).all()
    same = np.ascontiguousarray(np.arange(64 * 48 * 3, dtype=np.uint8).reshape(64, 48, 3))
    assert np.array_equal(prepare_image(same, (64, 48)), same)  # already at size: untouched
    assert prepare_image(image, (32, 48)).shape == (32, 48, 3)  # (height, width)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8)],
)
def test_prepare_image_refuses_what_is_not_rgb_uint8(bad):
    with pytest.raises(ValueError, match="front: expected an RGB uint8 image of shape"):
        prepare_image(bad, IMAGE_SIZE, "front")


def test_build_observation_prepares_every_camera_and_checks_the_state():
    images = {camera: np.full((128, 128, 3), 7, np.uint8) for camera in CAMERAS}
    state = state_vector(JOINTS, 0.04, TCP, QUAT)
    observation = build_observation(images, state, 2.5)
    assert set(observation.images) == set(CAMERAS) and observation.time == 2.5
    assert all(image.shape == (*IMAGE_SIZE, 3) for image in observation.images.values())
    with pytest.raises(ValueError, match=r"no image from cameras \['wrist'\]"):
        build_observation({"front": images["front"]}, state, 0.0)
    with pytest.raises(ValueError, match="state: expected 15 values"):
        build_observation(images, state[:14], 0.0)


# --- the one decoder: rclpy messages and rosbags messages alike --------------------------------------
class _Msg:
    """The fields both rclpy's and rosbags' sensor_msgs/Image have; ``data`` as either one gives it."""

    def __init__(self, array: np.ndarray, encoding: str, data_kind: str = "numpy") -> None:
        self.encoding = encoding
        self.height, self.width = array.shape[:2]
        self.step = array.strides[0]
        self.is_bigendian = 0
        raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        self.data = raw if data_kind == "numpy" else raw.tobytes()


RGB = np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("data_kind", ["numpy", "bytes"])
@pytest.mark.parametrize(
    ("encoding", "stored"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[..., ::-1]),
        ("rgba8", np.dstack([RGB, np.full((6, 8), 255, np.uint8)])),
        ("bgra8", np.dstack([RGB[..., ::-1], np.zeros((6, 8), np.uint8)])),
    ],
)
def test_colour_encodings_decode_to_rgb(encoding, stored, data_kind):
    msg = _Msg(stored, encoding, data_kind)
    decoded = color_from_msg(msg)
    assert decoded.dtype == np.uint8 and decoded.flags.c_contiguous and np.array_equal(decoded, RGB)


def test_colour_decoding_resizes_through_prepare_image():
    big = np.random.default_rng(1).integers(0, 255, (128, 96, 3), dtype=np.uint8)
    assert np.array_equal(color_from_msg(_Msg(big, "rgb8"), (64, 48)), prepare_image(big, (64, 48)))


def test_decoder_errors_name_the_problem():
    with pytest.raises(ValueError, match="unsupported image encoding 'mono16' for a colour image"):
        color_from_msg(_Msg(np.zeros((4, 4), np.uint16), "mono16"))
    truncated = _Msg(RGB, "rgb8")
    truncated.data = truncated.data[:-3]
    with pytest.raises(ValueError, match="malformed rgb8 image"):
        color_from_msg(truncated)
    with pytest.raises(ValueError, match="unsupported encoding '32FC1'"):
        image_from_msg(_Msg(np.zeros((4, 4), np.float32), "32FC1"))


def test_depth_decodes_from_a_numpy_buffer():
    depth = np.arange(48, dtype=np.uint16).reshape(6, 8) * 100
    assert np.array_equal(depth_from_msg(_Msg(depth, "16UC1")), depth)


def test_the_policy_server_and_classifier_buffers_build_the_schema_state():
    """Both ROS-side buffers, fed what their nodes take from joint_states (fingers included),
    gripper/state and ee_pose, give exactly :func:`state_vector`'s state."""
    from meta_robot.learning.skill_execution import InputBuffer
    from meta_robot.learning.success_monitor import ObservationBuffer

    joints = [*JOINTS, 0.02, 0.02]
    expected = state_vector(JOINTS, 0.04, TCP, QUAT)
    policy_inputs = InputBuffer(("front",))
    for name, value in (("front", RGB), ("joints", joints), ("gripper", 0.04), ("pose", [*TCP, *QUAT])):
        policy_inputs.put(name, 0.0, value)
    assert np.array_equal(policy_inputs.observation(0.0, np.asarray).state, expected)
    classifier_inputs = ObservationBuffer(("front",))
    classifier_inputs.set_image("front", RGB, 1)
    classifier_inputs.set_joints(joints)
    classifier_inputs.set_gripper(0.04)
    classifier_inputs.set_pose(TCP, QUAT)
    observation = classifier_inputs.observation(np.asarray)
    assert observation is not None and np.array_equal(observation.state, expected)
