"""Conversions between ROS messages and the pure-Python arm types, used by every arm-facing node."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose as PoseMsg
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import ArmCommand, GripperState
from sensor_msgs.msg import JointState

from meta_robot.core.arm import ARM_JOINT_NAMES, FINGER_JOINT_NAMES, GRIPPER_MAX_WIDTH, ArmState, Pose
from meta_robot.safety.layer import Command


def seconds_to_stamp(seconds: float) -> Time:
    """A builtin_interfaces/Time from seconds (non-negative)."""
    nanoseconds = max(0, round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def stamp_to_seconds(stamp: Time) -> float:
    """Seconds from a builtin_interfaces/Time."""
    return stamp.sec + stamp.nanosec * 1e-9


def pose_to_msg(pose: Pose) -> PoseMsg:
    """geometry_msgs/Pose from a Pose."""
    msg = PoseMsg()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in pose.position)
    o = msg.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in pose.orientation)
    return msg


def pose_from_msg(msg: PoseMsg) -> Pose:
    """Pose from a geometry_msgs/Pose (no normalisation: the safety layer judges the quaternion)."""
    p, o = msg.position, msg.orientation
    return Pose(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))


def command_from_msg(msg: ArmCommand) -> Command:
    """The safety layer's Command from an ArmCommand message."""
    pose = pose_from_msg(msg.pose)
    return Command(
        stamp=stamp_to_seconds(msg.header.stamp),
        frame_id=msg.header.frame_id,
        mode=int(msg.mode),
        position=pose.position,
        orientation=pose.orientation,
        gripper_width=float(msg.gripper_width),
        source=msg.source,
    )


def command_to_msg(
    pose: Pose, gripper_width: float, stamp: float, frame_id: str, source: str, mode: int = 0
) -> ArmCommand:
    """An ArmCommand message, as commanders (demo, teleop, policies) build it."""
    msg = ArmCommand()
    msg.header.stamp = seconds_to_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.mode = mode
    msg.pose = pose_to_msg(pose)
    msg.gripper_width = float(gripper_width)
    msg.source = source
    return msg


def joint_state_msg(state: ArmState, stamp: Time) -> JointState:
    """sensor_msgs/JointState for the seven arm joints and the two fingers."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = [*ARM_JOINT_NAMES, *FINGER_JOINT_NAMES]
    msg.position = [float(v) for v in (*state.joint_positions, *state.finger_positions)]
    msg.velocity = [float(v) for v in (*state.joint_velocities, 0.0, 0.0)]
    return msg


def tcp_pose_msg(state: ArmState, stamp: Time, frame_id: str) -> PoseStamped:
    """geometry_msgs/PoseStamped of the TCP in the base frame."""
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.pose = pose_to_msg(state.tcp_pose)
    return msg


def gripper_state_msg(state: ArmState, stamp: Time) -> GripperState:
    """meta_robot_interfaces/GripperState from an arm reading."""
    msg = GripperState()
    msg.header.stamp = stamp
    msg.width = float(state.gripper_width)
    msg.max_width = GRIPPER_MAX_WIDTH
    msg.grasped = bool(state.gripper_grasped)
    return msg
