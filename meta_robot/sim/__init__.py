"""The MuJoCo workcell: scene, simulated arm, rendering, snapshots (no ROS).

MuJoCo reads ``MUJOCO_GL`` once, when it is first imported: headless EGL is the default here, set
before any module of this package imports mujoco (a later setting leaves rendering without a GL
platform on a machine with no display).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
