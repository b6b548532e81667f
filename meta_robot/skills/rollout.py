"""Run the scripted operator against an in-process workcell, without ROS.

The ROS path (scripted operator node -> teleop node -> safety layer -> sim bridge) is what records
demonstrations; this loop is the same controller on the same physics at a fraction of the cost, for
unit tests, for tuning the operator, and for setting up a skill's preconditions quickly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meta_robot.arm import ArmState, ArmTarget
from meta_robot.safety.limits import SafetyLimits
from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell
from meta_robot.skills.registry import GroundSkill
from meta_robot.skills.scripted_operator import ScriptedOperator, to_sample
from meta_robot.skills.world import DRAWER_JOINT, Grounding, WorldState
from meta_robot.teleop import TeleopConfig
from meta_robot.teleop.integrator import TargetIntegrator


def world_state(workcell: Workcell, arm: SimArm, state: ArmState | None = None) -> WorldState:
    """Privileged state of an in-process workcell (``state``: the arm's, if already read this tick)."""
    state = state or arm.read_state()
    objects = workcell.object_states()
    return WorldState(
        objects={o.name: o.position for o in objects},
        orientations={o.name: o.orientation for o in objects},
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
    gripper_width: float | None = None,
) -> RolloutResult:
    """Drive ``skill`` to completion (or its timeout) with the scripted operator, through the teleop
    node's own target integrator (its default speeds and leads, the safety box), as in the graph.
    ``gripper_width`` is what the teleop node remembers from a previous skill (None: open)."""
    teleop = TeleopConfig(device="topic")
    operator = ScriptedOperator(skill, grounding, rng, teleop.max_linear_speed, teleop.max_angular_speed)
    integrator = TargetIntegrator(teleop.integrator_config(SafetyLimits()))
    integrator.reset(gripper_width)
    dt = 1.0 / control_rate
    substeps = max(1, round(dt / workcell.model.opt.timestep))
    start = workcell.time
    while not operator.finished and workcell.time - start < skill.spec.timeout:
        state = arm.read_state()
        action = operator.act(world_state(workcell, arm, state), state.tcp_pose.orientation, workcell.time)
        sample = to_sample(action, teleop.max_linear_speed, teleop.max_angular_speed)
        target = integrator.update(sample, dt, state.tcp_pose)
        arm.command(ArmTarget(target, integrator.gripper_width))
        arm.step(substeps)
    return RolloutResult(
        operator.succeeded(world_state(workcell, arm)), workcell.time - start, not operator.finished
    )
