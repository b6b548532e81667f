"""meta_robot: a ROS 2 control stack for learned manipulation skills on a Franka arm."""

import os

# MuJoCo picks its GL platform once, when it is first imported, from MUJOCO_GL. Headless EGL is the
# default of every meta_robot process (a node, a command, an engine worker), set here because this
# runs before any of the package's modules can import mujoco; a user's own MUJOCO_GL is kept.
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
