"""Run the scripted operator against an in-process workcell, without ROS.

The ROS path (scripted operator node -> teleop node -> safety layer -> sim bridge) is what records
demonstrations; this loop is the same controller on the same physics at a fraction of the cost, for
unit tests, for tuning the operator, and for setting up a skill's preconditions quickly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meta_robot.arm import ArmTarget, Pose
from meta_robot.geometry import quat_multiply, quat_normalize, rotvec_to_quat
from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell
from meta_robot.skills.registry import GroundSkill
from meta_robot.skills.scripted_operator import CLOSE, ScriptedOperator
from meta_robot.skills.world import DRAWER_JOINT, Grounding, WorldState

GRIPPER_OPEN_WIDTH = 0.08
MAX_LEAD = 0.05  # m the integrated target may run ahead of the measured TCP


def world_state(workcell: Workcell, arm: SimArm) -> WorldState:
    """Privileged state of an in-process workcell."""
    state = arm.read_state()
    objects = {o.name: o.position for o in workcell.object_states()}
    orientations = {o.name: o.orientation for o in workcell.object_states()}
    return WorldState(
        objects=objects,
        orientations=orientations,
        drawer_opening=workcell.scene_joint_positions()[DRAWER_JOINT],
        tcp_position=state.tcp_pose.position,
        gripper_width=state.gripper_width,
        gripper_grasped=state.gripper_grasped,
    )


@dataclass
class RolloutResult:
    success: bool
    duration: float  # s of sim time
    timed_out: bool


def run_skill(
    workcell: Workcell,
    arm: SimArm,
    skill: GroundSkill,
    grounding: Grounding,
    rng: np.random.Generator,
    control_rate: float = 50.0,
) -> RolloutResult:
    """Drive ``skill`` to completion (or its timeout) with the scripted operator."""
    operator = ScriptedOperator(skill, grounding, rng)
    dt = 1.0 / control_rate
    substeps = max(1, round(dt / workcell.model.opt.timestep))
    start = workcell.time
    pose = arm.read_state().tcp_pose
    target, orientation = pose.position.copy(), pose.orientation.copy()
    width = arm.read_state().gripper_width
    while not operator.finished and workcell.time - start < skill.spec.timeout:
        state = arm.read_state()
        action = operator.act(world_state(workcell, arm), state.tcp_pose.orientation, workcell.time)
        target = target + action.linear * dt
        lead = target - state.tcp_pose.position
        if np.linalg.norm(lead) > MAX_LEAD:
            target = state.tcp_pose.position + lead * (MAX_LEAD / np.linalg.norm(lead))
        orientation = quat_normalize(quat_multiply(rotvec_to_quat(action.angular * dt), orientation))
        if action.gripper is not None:
            width = 0.0 if action.gripper == CLOSE else GRIPPER_OPEN_WIDTH
        arm.command(ArmTarget(Pose(target, orientation), width))
        arm.step(substeps)
    return RolloutResult(
        operator.succeeded(world_state(workcell, arm)), workcell.time - start, not operator.finished
    )
