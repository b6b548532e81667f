"""Sim bridge step rate against raw MuJoCo stepping of the same scene (one run each).

    .venv/bin/python benchmarks/bench_sim_bridge.py [--seconds 10]

The bridge runs flat out (real_time_factor 0, sim time on /clock) as its own process; its rate is
read from /clock in this process. "raw" is mj_step alone on the same scene in this process, so the
ratio is what the ROS node, the safety layer, the controller and the publications cost.
"""

from __future__ import annotations

import argparse
import threading
import time

from bench_sim_step import controlled_step_rate, raw_step_rate  # same folder
from rosgraph_msgs.msg import Clock

from meta_robot.ros.arm_messages import stamp_to_seconds
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.environment import apply_loopback_environment
from meta_robot.ros.graph import sim_graph
from meta_robot.ros.launcher import GraphProcesses
from meta_robot.sim.workcell import Workcell


def bridge_step_rate(seconds: float, camera_rate: float) -> float:
    """Physics steps per wall-clock second of the sim bridge node, measured on /clock."""
    env = apply_loopback_environment()
    specs = sim_graph("default", real_time_factor=0.0, bridge_parameters={"camera_rate": camera_rate})
    dt = Workcell("default").model.opt.timestep  # the bridge steps the same scene
    lock = threading.Lock()
    samples: list[tuple[float, float]] = []

    def on_clock(msg: Clock) -> None:
        with lock:
            samples.append((time.perf_counter(), stamp_to_seconds(msg.clock)))

    with GraphProcesses(specs, env) as graph, BackgroundNode("bench_clock") as ros:
        ros.node.create_subscription(Clock, "/clock", on_clock, 100)
        deadline = time.monotonic() + 120
        while len(samples) < 10:
            graph.check_running()
            if time.monotonic() > deadline:
                raise TimeoutError("the sim bridge published no /clock")
            time.sleep(0.1)
        time.sleep(1.0)  # past start-up
        with lock:
            w0, s0 = samples[-1]
        time.sleep(seconds)
        with lock:
            w1, s1 = samples[-1]
    return (s1 - s0) / dt / (w1 - w0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    raw = raw_step_rate(args.seconds)
    dt = Workcell("default").model.opt.timestep
    print(f"raw MuJoCo mj_step, workcell scene:                    {raw:10.0f} steps/s")
    controlled = controlled_step_rate(args.seconds)
    print(f"mj_step + IK controller, in process:                   {controlled:10.0f} steps/s")
    for camera_rate, label in ((0.0, "no cameras"), (15.0, "2 cameras 128x128 at 15 Hz sim time")):
        rate = bridge_step_rate(args.seconds, camera_rate)
        print(
            f"sim bridge node ({label + '):':<38}{rate:10.0f} steps/s   ratio {rate / raw:.3f}   "
            f"{rate * dt:.1f}x real time"
        )


if __name__ == "__main__":
    main()
