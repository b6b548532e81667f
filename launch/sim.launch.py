"""Simulated workcell: ros2 launch meta_robot sim.launch.py [scenario:=default] [seed:=0]
[real_time_factor:=1.0] [namespace:=] [localhost_only:=true] [policy:=goal_conditioned_bc]
[classifier:=success_classifier] [executive:=policy/execute_skill]

The same graph as ``meta-robot up sim`` (both read meta_robot.ros.graph).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from meta_robot.ros.graph import sim_graph
from meta_robot.ros.launch_support import launch_nodes, loopback_actions

ARGUMENTS = {
    "scenario": ("default", "scenario under sim/scenarios/"),
    "seed": ("0", "randomisation seed of the scenario"),
    "real_time_factor": ("1.0", "1.0 = real time; 0 = as fast as possible on /clock"),
    "namespace": ("", "namespace of the robot's nodes"),
    "localhost_only": ("true", "keep DDS discovery on loopback with a private domain id"),
    "policy": ("", "add the policy server with this checkpoint (manifest name or path)"),
    "classifier": ("", "add the success classifier with this checkpoint (manifest name or path)"),
    "executive": ("", "add the executive, sending skills to this ExecuteSkill action"),
}


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    actions = loopback_actions() if arg["localhost_only"].lower() == "true" else []
    specs = sim_graph(
        scenario=arg["scenario"],
        seed=int(arg["seed"]),
        real_time_factor=float(arg["real_time_factor"]),
        namespace=arg["namespace"],
        policy=arg["policy"] or None,
        classifier=arg["classifier"] or None,
        executive=arg["executive"] or None,
    )
    return actions + launch_nodes(specs)


def generate_launch_description():
    declared = [DeclareLaunchArgument(n, default_value=d, description=h) for n, (d, h) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
