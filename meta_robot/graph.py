"""One description of the node graph, read by the launch files and by ``meta-robot up``.

``ros2 launch meta_robot sim.launch.py`` turns each :class:`NodeSpec` into a launch_ros Node;
where ``ros2 launch`` is not installed (the PyPI wheels, CI) :mod:`meta_robot.launcher` starts the
same specs as processes. Adding a node here adds it to both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meta_robot import paths

GRAPHS = ("sim", "robot")


@dataclass(frozen=True)
class NodeSpec:
    """How to start one node: its executable, name, parameter files and overrides."""

    name: str
    executable: str  # console script installed by setup.py
    module: str  # python module whose main() runs the node (used where ros2 launch is absent)
    params_files: tuple[str, ...] = ()  # names under config/
    parameters: Mapping[str, Any] = field(default_factory=dict)
    namespace: str = ""

    def params_paths(self) -> list[Path]:
        """Absolute paths of the parameter files (failing loudly if one is missing)."""
        return [paths.config_path(name) for name in self.params_files]

    @property
    def full_name(self) -> str:
        """The node's fully qualified name, e.g. ``/r1/sim_bridge``."""
        ns = "/" + self.namespace.strip("/") if self.namespace.strip("/") else ""
        return f"{ns}/{self.name}"


def sim_graph(
    scenario: str = "default",
    seed: int = 0,
    real_time_factor: float = 1.0,
    namespace: str = "",
    bridge_parameters: Mapping[str, Any] | None = None,
) -> list[NodeSpec]:
    """The simulated workcell: the MuJoCo sim bridge stands in for the camera and the driver.

    ``bridge_parameters`` override the sim bridge's parameters (e.g. ``camera_rate``).
    """
    use_sim_time = real_time_factor <= 0.0
    return [
        NodeSpec(
            name="sim_bridge",
            executable="sim_bridge",
            module="meta_robot.nodes.sim_bridge_node",
            params_files=("safety.yaml", "sim_bridge.yaml"),
            parameters={
                "scenario": scenario,
                "seed": seed,
                "real_time_factor": float(real_time_factor),
                "use_sim_time": use_sim_time,
                **(bridge_parameters or {}),
            },
            namespace=namespace,
        ),
    ]


def robot_graph(
    robot_ip: str,
    realtime_config: str = "enforce",
    camera_serial: str = "",
    namespace: str = "",
) -> list[NodeSpec]:
    """The real workcell: franky driver on the arm, RealSense camera node."""
    return [
        NodeSpec(
            name="franky_driver",
            executable="franky_driver",
            module="meta_robot.nodes.franky_driver_node",
            params_files=("safety.yaml", "franky_driver.yaml"),
            parameters={"robot_ip": robot_ip, "realtime_config": realtime_config},
            namespace=namespace,
        ),
        NodeSpec(
            name="realsense_camera",
            executable="realsense_camera",
            module="meta_robot.nodes.realsense_camera_node",
            params_files=("realsense_camera.yaml",),
            parameters={"serial_number": camera_serial},
            namespace=namespace,
        ),
    ]
