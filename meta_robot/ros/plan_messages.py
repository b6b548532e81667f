"""The executive's plans and steps as messages (Plan, SkillStatus)."""

from __future__ import annotations

from typing import Any

from meta_robot_interfaces.msg import Plan, PlanStep, SkillStatus

from meta_robot.planning.executive import Event
from meta_robot.skills.registry import GroundSkill


def plan_msg(goal_name: str, steps: tuple[GroundSkill, ...], stamp: Any) -> Plan:
    msg = Plan()
    msg.header.stamp = stamp
    msg.goal = goal_name
    msg.steps = [PlanStep(skill=s.name, arguments=list(s.arguments)) for s in steps]
    return msg


def step_msg(event: Event, stamp: Any) -> SkillStatus:
    """A step starting (RUNNING) or judged (SUCCEEDED when its effects were observed, else FAILED;
    ``success_probability``: the classifiers' confidence in the least likely effect)."""
    skill = event.plan[event.step_index]
    msg = SkillStatus(skill=skill.name, arguments=list(skill.arguments), step=event.step_index)
    msg.header.stamp = stamp
    if event.record is None:
        msg.state = SkillStatus.RUNNING
        msg.success_probability = float("nan")
    else:
        msg.state = SkillStatus.SUCCEEDED if event.record.verified else SkillStatus.FAILED
        msg.success_probability = float(event.record.effects_confidence)
    return msg
