"""Run the scripted operator against an in-process workcell, without ROS.

The ROS path (scripted operator node -> teleop node -> safety layer -> sim bridge) is what records
demonstrations; this loop is the same controller, the same safety layer (its force limit holds the arm
exactly as the driver's does) on the same physics at a fraction of the cost, for unit tests, for tuning
the operator, and for setting up a skill's preconditions quickly.
"""

from __future__ import annotations

from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field

import numpy as np

from meta_robot.arm import ArmState
from meta_robot.safety.guarded_arm import GuardedArm
from meta_robot.safety.layer import Command, CommandMode, CommandRejected, SafetyLayer
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
    holds: Counter[str] = field(default_factory=Counter)  # times the safety layer held the arm, by reason
    refusals: Counter[str] = field(default_factory=Counter)  # commands it refused, by reason


def run_skill(
    workcell: Workcell,
    arm: SimArm,
    skill: GroundSkill,
    grounding: Grounding,
    rng: np.random.Generator,
    control_rate: float = 50.0,
    gripper_width: float | None = None,
    driver_rate: float = 100.0,
) -> RolloutResult:
    """Drive ``skill`` to completion (or its timeout) with the scripted operator, through the teleop
    node's own target integrator (its default speeds and leads) and the driver's safety layer ticking
    at ``driver_rate`` (workspace box, step limits, force limit), as in the graph. ``gripper_width``
    is what the teleop node remembers from a previous skill (None: open)."""
    teleop = TeleopConfig(device="topic")
    limits = SafetyLimits()
    operator = ScriptedOperator(skill, grounding, rng, teleop.max_linear_speed, teleop.max_angular_speed)
    integrator = TargetIntegrator(teleop.integrator_config(limits))
    integrator.reset(gripper_width)
    safety = SafetyLayer(limits)
    dt = 1.0 / control_rate
    ticks = max(1, round(dt * driver_rate))
    substeps = max(1, round(dt / ticks / workcell.model.opt.timestep))
    tick = substeps * workcell.model.opt.timestep
    start = workcell.time
    driver = GuardedArm(arm, safety)
    driver.tick(workcell.time, tick)  # the driver has read the arm before any command
    while not operator.finished and workcell.time - start < skill.spec.timeout:
        state = arm.read_state()
        action = operator.act(world_state(workcell, arm, state), state.tcp_pose.orientation, workcell.time)
        sample = to_sample(action, teleop.max_linear_speed, teleop.max_angular_speed)
        target = integrator.update(sample, dt, state.tcp_pose)
        command = Command(
            workcell.time,
            limits.base_frame,
            CommandMode.ABSOLUTE,
            target.position,
            target.orientation,
            integrator.gripper_width,
            "rollout",
        )
        with suppress(CommandRejected):  # counted by the safety layer, as the driver counts refusals
            safety.submit(command, workcell.time)
        for _ in range(ticks):
            driver.tick(workcell.time, tick)
            arm.step(substeps)
    return RolloutResult(
        operator.succeeded(world_state(workcell, arm)),
        workcell.time - start,
        not operator.finished,
        Counter(safety.holds),
        Counter(safety.rejections),
    )
