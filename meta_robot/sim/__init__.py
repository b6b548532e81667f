"""The MuJoCo workcell: scene, simulated arm, rendering, snapshots (no ROS).

Rendering is headless (EGL) unless ``MUJOCO_GL`` says otherwise: ``meta_robot/__init__.py`` sets the
default before any module of the package imports mujoco.
"""
