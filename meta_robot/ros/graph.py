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

# Every node: its module under meta_robot/nodes/ and the parameter files (under config/) it reads, in
# order. Its console script (setup.py) and its node name are the key.
NODES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sim_bridge": ("sim_bridge_node", ("safety.yaml", "sim_bridge.yaml")),
    "franky_driver": ("franky_driver_node", ("safety.yaml", "franky_driver.yaml")),
    "realsense_camera": ("realsense_camera_node", ("realsense_camera.yaml",)),
    "teleop": ("teleop_node", ("safety.yaml", "teleop.yaml")),
    "scripted_operator": ("scripted_operator_node", ("teleop.yaml",)),
    "recorder": ("recorder_node", ("recorder.yaml",)),
    "live_view": ("live_view_node", ("live_view.yaml",)),
    "policy_server": ("policy_server_node", ("safety.yaml", "policy_server.yaml")),
    "success_classifier": ("success_classifier_node", ("success_classifier.yaml",)),
    "executive": ("executive_node", ("executive.yaml",)),
}


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


def node(name: str, namespace: str = "", **parameters: Any) -> NodeSpec:
    """The spec of the node ``name`` (a key of :data:`NODES`) with ``parameters`` overriding its files."""
    try:
        module, params_files = NODES[name]
    except KeyError:
        raise ValueError(f"unknown node '{name}'; nodes: {', '.join(NODES)}") from None
    return NodeSpec(name, name, f"meta_robot.nodes.{module}", params_files, parameters, namespace)


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
    bridge = {
        "scenario": scenario,
        "seed": seed,
        "real_time_factor": float(real_time_factor),
        "use_sim_time": use_sim_time,
        **(bridge_parameters or {}),  # the caller's overrides win
    }
    specs = [node("sim_bridge", namespace, **bridge)]
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
    return node("executive", namespace, skill_action=skill_action, use_sim_time=use_sim_time)


def data_collection_nodes(
    teleop_device: str | None,
    recorder_dir: str | None,
    live_view: bool,
    namespace: str = "",
    use_sim_time: bool = False,
    scripted_seed: int | None = None,
) -> list[NodeSpec]:
    """Teleop, scripted operator (sim only), recorder and live view: the same on the robot and in sim."""
    specs = []
    if teleop_device is not None:
        specs.append(node("teleop", namespace, teleop={"device": teleop_device}, use_sim_time=use_sim_time))
    if scripted_seed is not None:
        specs.append(node("scripted_operator", namespace, seed=scripted_seed, use_sim_time=use_sim_time))
    if recorder_dir is not None:
        specs.append(node("recorder", namespace, output_dir=str(recorder_dir), use_sim_time=use_sim_time))
    if live_view:
        specs.append(node("live_view", namespace, use_sim_time=use_sim_time))
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
        command_topic = "policy/robot_command" if behind_teleop else "robot_command"
        specs.append(
            node(
                "policy_server",
                namespace,
                policy=policy,
                command_topic=command_topic,
                use_sim_time=use_sim_time,
            )
        )
    if classifier is not None:
        specs.append(node("success_classifier", namespace, checkpoint=classifier, use_sim_time=use_sim_time))
    return specs


def robot_graph(
    robot_ip: str,
    realtime_config: str = "enforce",
    camera_serial: str = "",
    namespace: str = "",
) -> list[NodeSpec]:
    """The real workcell: franky driver on the arm, RealSense camera node."""
    return [
        node("franky_driver", namespace, robot_ip=robot_ip, realtime_config=realtime_config),
        node("realsense_camera", namespace, serial_number=camera_serial),
    ]
