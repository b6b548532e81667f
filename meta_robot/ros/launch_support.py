"""Turn graph specs into ``launch_ros`` actions for the ``ros2 launch`` files in launch/.

Imported only by the launch files, so that nothing else needs ``launch``/``launch_ros`` (they are
part of a ROS 2 installation, not of the PyPI wheels).
"""

from __future__ import annotations

from collections.abc import Sequence

from launch.actions import SetEnvironmentVariable
from launch_ros.actions import Node

from meta_robot.ros.environment import loopback_environment
from meta_robot.ros.graph import NodeSpec


def launch_nodes(specs: Sequence[NodeSpec]) -> list[Node]:
    """One launch_ros Node per spec, with its parameter files and overrides."""
    return [
        Node(
            package="meta_robot",
            executable=spec.executable,
            name=spec.name,
            namespace=spec.namespace,
            parameters=[*map(str, spec.params_paths()), dict(spec.parameters)],
            output="screen",
            emulate_tty=True,
        )
        for spec in specs
    ]


def loopback_actions() -> list[SetEnvironmentVariable]:
    """Keep DDS discovery on this machine and on a private domain (used by the sim launch)."""
    env = loopback_environment()
    keys = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "FASTDDS_DEFAULT_PROFILES_FILE")
    return [SetEnvironmentVariable(k, env[k]) for k in keys if k in env]
