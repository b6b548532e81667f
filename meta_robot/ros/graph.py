"""One description of the node graph, read by the launch files and by ``meta-robot up``.

``ros2 launch meta_robot sim.launch.py`` turns each :class:`NodeSpec` into a launch_ros Node;
where ``ros2 launch`` is not installed (the PyPI wheels, CI) :mod:`meta_robot.ros.launcher` starts the
same specs as processes. Adding a node here adds it to both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meta_robot.core import paths

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
    teleop_device: str | None = None,
    scripted_operator: bool = False,
    recorder_dir: str | None = None,
    live_view: bool = False,
    policy: str | None = None,
    classifier: str | None = None,
    executive: str | None = None,
) -> list[NodeSpec]:
    """The simulated workcell: the MuJoCo sim bridge stands in for the camera and the driver.

    ``bridge_parameters`` override the sim bridge's parameters (e.g. ``camera_rate``). The optional
    nodes: a teleop node on ``teleop_device`` (``topic`` when the scripted operator drives it), the
    scripted operator, a recorder writing episodes under ``recorder_dir``, the live view, the policy
    server serving ``policy`` and the success classifier running ``classifier`` (checkpoint names
    from the manifest, or paths), and the executive sending skills to the ``executive`` action
    (``policy/execute_skill``, or ``scripted_operator/execute_skill`` for privileged scripted skills).
    """
    use_sim_time = real_time_factor <= 0.0
    specs = [
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
    if scripted_operator and teleop_device is None:
        teleop_device = "topic"
    specs += data_collection_nodes(
        teleop_device, recorder_dir, live_view, namespace, use_sim_time, seed if scripted_operator else None
    )
    specs += learned_skill_nodes(policy, classifier, namespace, use_sim_time, teleop_device is not None)
    if executive is not None:
        specs.append(executive_node(executive, namespace, use_sim_time))
    return specs


def executive_node(
    skill_action: str = "policy/execute_skill", namespace: str = "", use_sim_time: bool = False
) -> NodeSpec:
    """The executive and its planner: the same on the robot and in sim."""
    return NodeSpec(
        name="executive",
        executable="executive",
        module="meta_robot.nodes.executive_node",
        params_files=("executive.yaml",),
        parameters={"skill_action": skill_action, "use_sim_time": use_sim_time},
        namespace=namespace,
    )


def data_collection_nodes(
    teleop_device: str | None,
    recorder_dir: str | None,
    live_view: bool,
    namespace: str = "",
    use_sim_time: bool = False,
    scripted_seed: int | None = None,
) -> list[NodeSpec]:
    """Teleop, scripted operator (sim only), recorder and live view: the same on the robot and in sim."""
    time_parameters = {"use_sim_time": use_sim_time}
    specs = []
    if teleop_device is not None:
        specs.append(
            NodeSpec(
                name="teleop",
                executable="teleop",
                module="meta_robot.nodes.teleop_node",
                params_files=("safety.yaml", "teleop.yaml"),
                parameters={"teleop": {"device": teleop_device}, **time_parameters},
                namespace=namespace,
            )
        )
    if scripted_seed is not None:
        specs.append(
            NodeSpec(
                name="scripted_operator",
                executable="scripted_operator",
                module="meta_robot.nodes.scripted_operator_node",
                params_files=("teleop.yaml",),
                parameters={"seed": scripted_seed, **time_parameters},
                namespace=namespace,
            )
        )
    if recorder_dir is not None:
        specs.append(
            NodeSpec(
                name="recorder",
                executable="recorder",
                module="meta_robot.nodes.recorder_node",
                params_files=("recorder.yaml",),
                parameters={"output_dir": str(recorder_dir), **time_parameters},
                namespace=namespace,
            )
        )
    if live_view:
        specs.append(
            NodeSpec(
                name="live_view",
                executable="live_view",
                module="meta_robot.nodes.live_view_node",
                params_files=("live_view.yaml",),
                parameters=time_parameters,
                namespace=namespace,
            )
        )
    return specs


def learned_skill_nodes(
    policy: str | None,
    classifier: str | None,
    namespace: str = "",
    use_sim_time: bool = False,
    behind_teleop: bool = False,
) -> list[NodeSpec]:
    """The policy server and the success classifier: the same on the robot and in sim. Behind a
    teleop node the policy commands on ``policy/robot_command``, so an operator can take over."""
    specs = []
    if policy is not None:
        specs.append(
            NodeSpec(
                name="policy_server",
                executable="policy_server",
                module="meta_robot.nodes.policy_server_node",
                params_files=("safety.yaml", "policy_server.yaml"),
                parameters={
                    "policy": policy,
                    "command_topic": "policy/robot_command" if behind_teleop else "robot_command",
                    "use_sim_time": use_sim_time,
                },
                namespace=namespace,
            )
        )
    if classifier is not None:
        specs.append(
            NodeSpec(
                name="success_classifier",
                executable="success_classifier",
                module="meta_robot.nodes.success_classifier_node",
                params_files=("success_classifier.yaml",),
                parameters={"checkpoint": classifier, "use_sim_time": use_sim_time},
                namespace=namespace,
            )
        )
    return specs


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
