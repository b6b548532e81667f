"""The MuJoCo sim bridge: the simulated workcell behind the same names as the camera and the driver.

Production nodes cannot tell it from the robot: it publishes the driver's topics through
:class:`DriverInterface` (the same safety layer guards it) and the RealSense topics through
:class:`CameraPublisher`. What only a simulator can do lives under ``sim/``: ``sim/reset``
(ResetSim), ``sim/perturb`` (PerturbObject) and ``sim/object_states`` (privileged ObjectStates),
which no production node reads. It also publishes ``/clock``; with ``use_sim_time`` the whole graph
runs on it, as fast as the CPU allows when ``real_time_factor`` is 0.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from meta_robot_interfaces.msg import ObjectState, ObjectStates
from meta_robot_interfaces.srv import PerturbObject, ResetSim
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from meta_robot.core.arm import Pose
from meta_robot.core.observation import CAMERA_NAMESPACES
from meta_robot.ros.arm_messages import pose_to_msg, seconds_to_stamp
from meta_robot.ros.camera_publisher import CameraPublisher
from meta_robot.ros.driver_interface import DriverInterface, ensure_sole_driver
from meta_robot.ros.entry import run_node
from meta_robot.ros.parameters import declare_config, param
from meta_robot.sim.rendering import WorkcellRenderer
from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell

MAX_LAG = 0.5  # s behind the wall clock before the real-time loop stops trying to catch up


@dataclass(frozen=True)
class SimBridgeParameters:
    """The sim bridge's parameters (the launch sets scenario, seed and real_time_factor)."""

    scenario: str = param("default", "scenario name under sim/scenarios/")
    seed: int = param(0, "randomisation seed of the scenario")
    real_time_factor: float = param(1.0, "1.0 = real time; 0 = as fast as possible (>= 0)")
    control_rate: float = param(100.0, "Hz: safety tick, controller target update, state publishing")
    camera_rate: float = param(15.0, "Hz of sim time for front + wrist RGB-D; 0 disables the cameras")
    camera_width: int = param(128, "pixels")
    camera_height: int = param(128, "pixels")
    robot_meshes: str = param("collision", "robot drawn with 'collision' (fast on CPU) or 'visual' meshes")

    def __post_init__(self) -> None:
        if self.real_time_factor < 0 or not math.isfinite(self.real_time_factor):
            raise ValueError(f"real_time_factor must be >= 0, got {self.real_time_factor}")
        if not (0 < self.control_rate <= 1000) or self.camera_rate < 0:
            raise ValueError("control_rate must be in (0, 1000] Hz and camera_rate >= 0 Hz")


class SimBridgeNode(Node):
    """Steps the workcell, tracks safe targets, publishes state, cameras and /clock."""

    def __init__(self) -> None:
        super().__init__("sim_bridge")
        p = declare_config(self, "", SimBridgeParameters)
        scenario, seed, self.real_time_factor = p.scenario, p.seed, p.real_time_factor
        control_rate, camera_rate = p.control_rate, p.camera_rate
        width, height, robot_meshes = p.camera_width, p.camera_height, p.robot_meshes
        self.use_sim_time = bool(self.get_parameter("use_sim_time").value)

        ensure_sole_driver(self)
        self.workcell = Workcell(scenario)
        self.workcell.reset(seed)
        self.arm = SimArm(self.workcell)
        self.arm.connect()
        physics_dt = self.workcell.model.opt.timestep
        self.substeps = max(1, round(1.0 / (control_rate * physics_dt)))
        self.tick_period = self.substeps * physics_dt
        self._wall_start = time.monotonic()
        self._sim_start = self.workcell.time
        self.driver = DriverInterface(self, self.arm, self.now)

        self.renderer = WorkcellRenderer(self.workcell, width, height, robot_meshes) if camera_rate else None
        self.camera_period = 1.0 / camera_rate if camera_rate else math.inf
        self._next_camera_time = self.workcell.time
        self.cameras = (
            {
                name: CameraPublisher(self, prefix, frame_id=f"{prefix}_color_optical_frame")
                for name, prefix in CAMERA_NAMESPACES.items()  # MJCF camera name -> topic prefix
            }
            if self.renderer
            else {}
        )
        self._clock_pub = self.create_publisher(Clock, "/clock", 10)
        self._objects_pub = self.create_publisher(ObjectStates, "sim/object_states", 10)
        self.create_service(ResetSim, "sim/reset", self._on_reset)
        self.create_service(PerturbObject, "sim/perturb", self._on_perturb)
        self.steps = 0
        self.get_logger().info(
            f"sim bridge: scenario '{scenario}' seed {seed}, physics {1 / physics_dt:.0f} Hz, control "
            f"{1 / self.tick_period:.0f} Hz, cameras {list(self.cameras)} {width}x{height} at "
            f"{camera_rate:g} Hz, real_time_factor {self.real_time_factor:g}"
            + (" (sim time on /clock)" if self.use_sim_time else "")
        )

    def now(self) -> float:
        """The graph's clock: sim time under use_sim_time, else the ROS (wall) clock."""
        if self.use_sim_time:
            return self.workcell.time
        return self.get_clock().now().nanoseconds * 1e-9

    # -- loop -------------------------------------------------------------------------------------
    def tick(self) -> None:
        """One control period: safety + command, physics substeps, publications."""
        self.driver.tick(self.tick_period)
        self.arm.step(self.substeps)
        self.steps += self.substeps
        sim_time = self.workcell.time
        self._clock_pub.publish(Clock(clock=seconds_to_stamp(sim_time)))
        if self.renderer is not None and sim_time >= self._next_camera_time:
            self._next_camera_time += self.camera_period
            stamp = seconds_to_stamp(self.now())
            for name, publisher in self.cameras.items():
                publisher.publish(self.renderer.render(name), stamp)
            self._publish_objects(stamp)

    def run(self, executor: SingleThreadedExecutor) -> None:
        """Run the loop at ``real_time_factor`` (or flat out at 0), serving callbacks in between."""
        next_tick = time.monotonic()
        while rclpy.ok():
            try:
                self.tick()
            except RCLError:
                if rclpy.ok():
                    raise
                return  # shut down (Ctrl-C / SIGTERM) while publishing
            if self.real_time_factor == 0:
                executor.spin_once(timeout_sec=0.0)
                continue
            next_tick += self.tick_period / self.real_time_factor
            lag = time.monotonic() - next_tick
            if lag > MAX_LAG:
                self.get_logger().warning(
                    f"simulation is {lag:.2f} s behind real time; skipping ahead", throttle_duration_sec=5.0
                )
                next_tick = time.monotonic()
            while (remaining := next_tick - time.monotonic()) > 0:
                executor.spin_once(timeout_sec=remaining)

    # -- sim-only services ------------------------------------------------------------------------
    def _on_reset(self, request: ResetSim.Request, response: ResetSim.Response) -> ResetSim.Response:
        try:
            self.workcell.reset(int(request.seed), request.scenario or None)
        except (KeyError, ValueError, FileNotFoundError) as exc:
            response.success, response.message = False, str(exc)
            self.get_logger().error(f"reset refused: {exc}")
            return response
        self.arm.reset_controller()
        self.driver.safety.clear_goal()
        self._next_camera_time = self.workcell.time
        response.success = True
        response.message = f"reset to scenario '{self.workcell.scenario_name}' seed {request.seed}"
        self.get_logger().info(response.message)
        return response

    def _on_perturb(
        self, request: PerturbObject.Request, response: PerturbObject.Response
    ) -> PerturbObject.Response:
        d = request.displacement
        try:
            self.workcell.perturb(request.object_name, np.array([d.x, d.y, d.z]), float(request.yaw))
        except (KeyError, ValueError) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, f"moved {request.object_name}"
        self.get_logger().info(f"perturbation: {response.message} by {[d.x, d.y, d.z]} m, {request.yaw} rad")
        return response

    def _publish_objects(self, stamp) -> None:
        msg = ObjectStates()
        msg.header.stamp = stamp
        msg.header.frame_id = self.driver.limits.base_frame
        for obj in self.workcell.object_states():
            state = ObjectState(name=obj.name, pose=pose_to_msg(Pose(obj.position, obj.orientation)))
            state.twist.linear.x, state.twist.linear.y, state.twist.linear.z = map(float, obj.linear_velocity)
            state.twist.angular.x, state.twist.angular.y, state.twist.angular.z = map(
                float, obj.angular_velocity
            )
            msg.objects.append(state)
        joints = self.workcell.scene_joint_positions()
        msg.joint_names = list(joints)
        msg.joint_positions = [float(v) for v in joints.values()]
        self._objects_pub.publish(msg)


def _spin(node: SimBridgeNode) -> None:
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node.run(executor)


def main(args: list[str] | None = None) -> None:
    """Entry point: ``sim_bridge --ros-args -p scenario:=default -p seed:=3``."""
    sys.exit(run_node(SimBridgeNode, spin=_spin, shutdown=lambda node: node.arm.disconnect(), args=args))


if __name__ == "__main__":
    main()
