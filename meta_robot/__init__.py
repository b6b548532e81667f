"""meta_robot: a ROS 2 control stack for learned manipulation skills on a Franka arm."""

__version__ = "0.1.0"
