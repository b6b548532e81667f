"""Privileged world state from the sim's messages: what the scripted operator acts on and what the
evaluation referee judges skills by. Sim only (``sim/object_states`` exists only in simulation)."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import GripperState, ObjectStates

from meta_robot.skills.world import DRAWER_JOINT, WorldState


def world_from_messages(
    objects: ObjectStates, pose: PoseStamped, gripper: GripperState
) -> tuple[WorldState, np.ndarray]:
    """The world state and the TCP orientation (quaternion xyzw)."""
    positions, orientations = {}, {}
    for o in objects.objects:
        p, q = o.pose.position, o.pose.orientation
        positions[o.name] = np.array([p.x, p.y, p.z])
        orientations[o.name] = np.array([q.x, q.y, q.z, q.w])
    joints = dict(zip(objects.joint_names, objects.joint_positions, strict=False))
    p, q = pose.pose.position, pose.pose.orientation
    state = WorldState(
        objects=positions,
        orientations=orientations,
        drawer_opening=float(joints.get(DRAWER_JOINT, 0.0)),
        tcp_position=np.array([p.x, p.y, p.z]),
        gripper_width=gripper.width,
        gripper_grasped=gripper.grasped,
    )
    return state, np.array([q.x, q.y, q.z, q.w])
