"""The real Franka arm through franky, behind the same safety layer and names as the sim bridge.

Parameters: ``robot_ip`` (FCI address), ``realtime_config`` ('enforce' on the real arm, 'ignore'
only for simulators such as franky-sim), ``control_rate`` (Hz) and the ``franky.*`` and ``safety.*``
groups. The arm is connected when the node starts and left stopped when it exits for any reason.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from rclpy.node import Node

from meta_robot.drivers.franky_arm import FrankyArm, FrankyArmConfig
from meta_robot.ros.driver_interface import DriverInterface, ensure_sole_driver
from meta_robot.ros.entry import run_node
from meta_robot.ros.parameters import declare_config, param


@dataclass(frozen=True)
class FrankyDriverParameters:
    """The driver's own parameters (beside safety.* and the arm's FrankyArmConfig)."""

    control_rate: float = param(100.0, "Hz, safety tick and state rate", (10.0, 1000.0))

    def __post_init__(self) -> None:
        if not 10.0 <= self.control_rate <= 1000.0:
            raise ValueError(f"control_rate must be in [10, 1000] Hz, got {self.control_rate}")


class FrankyDriverNode(Node):
    """Runs the safety tick at ``control_rate`` and streams safe targets to franky."""

    def __init__(self) -> None:
        super().__init__("franky_driver")
        rate = declare_config(self, "", FrankyDriverParameters).control_rate
        config = declare_config(self, "", FrankyArmConfig)
        ensure_sole_driver(self)
        self.arm = FrankyArm(config)
        self.get_logger().info(
            f"connecting to the Franka at {config.robot_ip} (realtime_config={config.realtime_config})"
        )
        self.arm.connect()
        self.driver = DriverInterface(self, self.arm, self._now)
        self.period = 1.0 / rate
        self._last_tick = time.monotonic()
        self.create_timer(self.period, self._tick)
        self.get_logger().info(f"franky driver ready: safety tick and state at {rate:g} Hz")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = now - self._last_tick, now
        self.driver.tick(min(dt, 5 * self.period))

    def shutdown(self) -> None:
        """Leave the arm stopped and the connection closed."""
        self.arm.disconnect()


def main(args: list[str] | None = None) -> None:
    """Entry point: ``franky_driver --ros-args -p robot_ip:=172.16.0.2``."""
    sys.exit(run_node(FrankyDriverNode, shutdown=FrankyDriverNode.shutdown, args=args))


if __name__ == "__main__":
    main()
