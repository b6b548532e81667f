"""Real workcell: ros2 launch meta_robot robot.launch.py robot_ip:=172.16.0.2
[realtime_config:=enforce] [camera_serial:=] [namespace:=] [policy:=goal_conditioned_bc]
[classifier:=success_classifier] [executive:=policy/execute_skill]

The same graph as ``meta-robot up robot`` (both read meta_robot.ros.graph). DDS settings are the robot
computer's own: this launch does not change ROS_DOMAIN_ID or the discovery range.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from meta_robot.ros.graph import executive_node, learned_skill_nodes, robot_graph
from meta_robot.ros.launch_support import launch_nodes

ARGUMENTS = {
    "robot_ip": (None, "address of the Franka controller (FCI)"),
    "realtime_config": ("enforce", "'enforce' on a PREEMPT_RT kernel; 'ignore' only for simulators"),
    "camera_serial": ("", "RealSense serial number; empty = the only connected camera"),
    "namespace": ("", "namespace of the robot's nodes"),
    "policy": ("", "add the policy server with this checkpoint (manifest name or path)"),
    "classifier": ("", "add the success classifier with this checkpoint (manifest name or path)"),
    "executive": ("", "add the executive, sending skills to this ExecuteSkill action"),
}


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    specs = robot_graph(
        robot_ip=arg["robot_ip"],
        realtime_config=arg["realtime_config"],
        camera_serial=arg["camera_serial"],
        namespace=arg["namespace"],
    )
    specs += learned_skill_nodes(arg["policy"] or None, arg["classifier"] or None, arg["namespace"])
    if arg["executive"]:
        specs.append(executive_node(arg["executive"], arg["namespace"]))
    return launch_nodes(specs)


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(n, description=h, **({} if d is None else {"default_value": d}))
        for n, (d, h) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
