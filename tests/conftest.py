"""Every test process discovers DDS peers on loopback only, on a domain of its own."""

from __future__ import annotations

from meta_robot.ros.environment import apply_loopback_environment

# Applied at import, before any test can call rclpy.init(); child processes inherit it.
apply_loopback_environment()
