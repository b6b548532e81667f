"""The scripted operator's controllers, one module per skill family, and the registry that names them.

A controller is a function of the operator's :class:`~meta_robot.skills.controllers.base.SkillContext`
returning the skill's phases: functions of the world that compute each waypoint as it starts. Adding a
primitive is its entry in ``config/skills.yaml``, a function here and its line in :data:`CONTROLLERS`.
"""

from __future__ import annotations

from collections.abc import Callable

from meta_robot.skills.controllers.base import Phase, SkillContext
from meta_robot.skills.controllers.drawer import close_drawer, open_drawer
from meta_robot.skills.controllers.pick import pick
from meta_robot.skills.controllers.place import place_in_drawer, place_on_shelf
from meta_robot.skills.controllers.push import push

Controller = Callable[[SkillContext], list[Phase]]

CONTROLLERS: dict[str, Controller] = {
    "pick": pick,
    "place_in_drawer": place_in_drawer,
    "place_on_shelf": place_on_shelf,
    "open_drawer": open_drawer,
    "close_drawer": close_drawer,
    "push": push,
}
