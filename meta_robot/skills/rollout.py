"""Run the scripted operator against an in-process workcell, without ROS.

The ROS path (scripted operator node -> teleop node -> safety layer -> sim bridge) is what records
demonstrations; this loop is the same controller, the same safety layer (its force limit holds the arm
exactly as the driver's does) on the same physics at a fraction of the cost, for unit tests, for tuning
the operator, and for setting up a skill's preconditions quickly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

import numpy as np

from meta_robot.core.arm import ArmState
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
    gripper_width: float | None = None  # what the teleop integrator commanded last (the next skill's start)


TickObserver = Callable[[int, ArmState, Command], None]


class InProcessRig:
    """The graph's driver in one process: the simulated arm behind its own safety layer (workspace
    box, step limits, force limit, watchdog), ticked at ``driver_rate`` while physics runs between
    ticks. Commanders (the scripted operator through the teleop integrator, or a learned policy)
    :meth:`submit` absolute targets and :meth:`advance` the world, as they would publish
    ``robot_command`` and wait in the graph."""

    def __init__(
        self, workcell: Workcell, arm: SimArm, limits: SafetyLimits | None = None, driver_rate: float = 100.0
    ) -> None:
        self.workcell, self.arm = workcell, arm
        self.limits = limits or SafetyLimits()
        self.safety = SafetyLayer(self.limits)
        self.driver = GuardedArm(arm, self.safety)
        self.driver_rate = driver_rate
        self._substeps = max(1, round(1.0 / driver_rate / workcell.model.opt.timestep))
        self._tick = self._substeps * workcell.model.opt.timestep
        self.driver.tick(workcell.time, self._tick)  # the driver has read the arm before any command

    def submit(
        self, position: np.ndarray, orientation: np.ndarray, gripper_width: float, source: str
    ) -> Command:
        """Send an absolute TCP target; a refusal is counted by the safety layer (as the driver counts
        it) and the arm keeps its previous goal."""
        command = Command(
            self.workcell.time,
            self.limits.base_frame,
            CommandMode.ABSOLUTE,
            np.asarray(position, dtype=float),
            np.asarray(orientation, dtype=float),
            float(gripper_width),
            source,
        )
        with suppress(CommandRejected):
            self.safety.submit(command, self.workcell.time)
        return command

    def advance(self, duration: float) -> None:
        """Run the driver and physics for ``duration`` s (whole driver ticks, at least one)."""
        for _ in range(max(1, round(duration * self.driver_rate))):
            self.driver.tick(self.workcell.time, self._tick)
            self.arm.step(self._substeps)


def run_skill(
    workcell: Workcell,
    arm: SimArm,
    skill: GroundSkill,
    grounding: Grounding,
    rng: np.random.Generator,
    control_rate: float = 50.0,
    gripper_width: float | None = None,
    driver_rate: float = 100.0,
    rig: InProcessRig | None = None,
    on_tick: TickObserver | None = None,
) -> RolloutResult:
    """Drive ``skill`` to completion (or its timeout) with the scripted operator, through the teleop
    node's own target integrator (its default speeds and leads) and the driver's safety layer ticking
    at ``driver_rate`` (workspace box, step limits, force limit), as in the graph. ``gripper_width``
    is what the teleop node remembers from a previous skill (None: open). ``rig`` keeps one safety
    layer across the skills of an episode (as the graph's driver does); ``on_tick(i, state, command)``
    sees every operator tick before the world advances (the data engine records through it)."""
    teleop = TeleopConfig(device="topic")
    rig = rig or InProcessRig(workcell, arm, driver_rate=driver_rate)
    operator = ScriptedOperator(skill, grounding, rng, teleop.max_linear_speed, teleop.max_angular_speed)
    integrator = TargetIntegrator(teleop.integrator_config(rig.limits))
    integrator.reset(gripper_width)
    holds, refusals = Counter(rig.safety.holds), Counter(rig.safety.rejections)
    dt = 1.0 / control_rate
    start = workcell.time
    tick = 0
    while not operator.finished and workcell.time - start < skill.spec.timeout:
        state = arm.read_state()
        action = operator.act(world_state(workcell, arm, state), state.tcp_pose.orientation, workcell.time)
        sample = to_sample(action, teleop.max_linear_speed, teleop.max_angular_speed)
        target = integrator.update(sample, dt, state.tcp_pose)
        command = rig.submit(target.position, target.orientation, integrator.gripper_width, "rollout")
        if on_tick is not None:
            on_tick(tick, state, command)
        tick += 1
        rig.advance(dt)
    return RolloutResult(
        operator.succeeded(world_state(workcell, arm)),
        workcell.time - start,
        not operator.finished,
        Counter(rig.safety.holds) - holds,
        Counter(rig.safety.rejections) - refusals,
        integrator.gripper_width,
    )
