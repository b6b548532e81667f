"""Teleoperation and data collection: ros2 launch meta_robot teleop.launch.py device:=spacemouse
[robot:=sim | robot_ip:=172.16.0.2] [output_dir:=data/episodes] [live_view:=true] [namespace:=]

The workcell (the sim bridge, or the franky driver and RealSense camera), a teleop node on
``device`` (spacemouse, gamepad; ``topic`` for OperatorInput from elsewhere), the recorder and the
Foxglove live view on 127.0.0.1:8765. The keyboard device needs a terminal, which ros2 launch does not
give its nodes: run ``meta-robot teleop --device keyboard`` beside this launch with device:=none.
Episodes start and end with the device's buttons or the recorder's services.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from meta_robot.ros.graph import data_collection_nodes, robot_graph, sim_graph
from meta_robot.ros.launch_support import launch_nodes, loopback_actions

ARGUMENTS = {
    "robot": ("sim", "'sim' for the MuJoCo workcell, 'real' for the Franka (needs robot_ip)"),
    "robot_ip": ("", "address of the Franka controller (FCI) when robot:=real"),
    "realtime_config": ("enforce", "'enforce' on a PREEMPT_RT kernel; 'ignore' only for simulators"),
    "device": ("spacemouse", "spacemouse | gamepad | topic | none"),
    "output_dir": ("data/episodes", "where the recorder writes episodes"),
    "live_view": ("true", "start the Foxglove live view on 127.0.0.1"),
    "namespace": ("", "namespace of the robot's nodes"),
}


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    if arg["robot"] == "sim":
        actions, specs = loopback_actions(), sim_graph(namespace=arg["namespace"])
    else:
        actions = []
        specs = robot_graph(arg["robot_ip"], arg["realtime_config"], namespace=arg["namespace"])
    device = None if arg["device"] == "none" else arg["device"]
    specs += data_collection_nodes(
        device, arg["output_dir"], arg["live_view"].lower() == "true", arg["namespace"]
    )
    return actions + launch_nodes(specs)


def generate_launch_description():
    declared = [DeclareLaunchArgument(n, default_value=d, description=h) for n, (d, h) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
