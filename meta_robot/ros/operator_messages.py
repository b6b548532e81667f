"""OperatorInput messages to and from the teleop package's device samples."""

from __future__ import annotations

from meta_robot_interfaces.msg import OperatorInput

from meta_robot.ros.arm_messages import seconds_to_stamp
from meta_robot.teleop import EpisodeEventKind, GripperAction, OperatorSample
from meta_robot.teleop.devices import Frame


def sample_to_msg(sample: OperatorSample, stamp: float) -> OperatorInput:
    """OperatorInput from a device sample."""
    msg = OperatorInput()
    msg.header.stamp = seconds_to_stamp(stamp)
    msg.device = sample.device
    msg.deadman = bool(sample.deadman)
    lin, ang = msg.twist.linear, msg.twist.angular
    lin.x, lin.y, lin.z, ang.x, ang.y, ang.z = (float(v) for v in sample.twist)
    msg.frame, msg.gripper, msg.event = int(sample.frame), int(sample.gripper), int(sample.event)
    msg.speed_scale = float(sample.speed_scale)
    return msg


def sample_from_msg(msg: OperatorInput) -> OperatorSample:
    """A device sample from OperatorInput; raises ValueError on unknown enum values."""
    lin, ang = msg.twist.linear, msg.twist.angular
    return OperatorSample(
        device=msg.device or "topic",
        deadman=bool(msg.deadman),
        twist=(lin.x, lin.y, lin.z, ang.x, ang.y, ang.z),
        frame=Frame(msg.frame),
        gripper=GripperAction(msg.gripper),
        event=EpisodeEventKind(msg.event),
        speed_scale=msg.speed_scale,
    )
