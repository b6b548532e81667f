"""Command -> first motion latency through the graph: a commander process publishes a step command,
and the time until the sim bridge's ee_pose shows the TCP moving is measured (p50 / p99).

    .venv/bin/python benchmarks/bench_command_latency.py [--trials 30] [--plot out/latency.png]

The path measured is the production one: DDS delivery, the safety layer, the controller, physics
and the ee_pose publication (wall-clock, real-time simulation).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped

from meta_robot.core.arm import Pose
from meta_robot.ros.arm_messages import pose_from_msg
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.commander import DOWN, ArmCommander
from meta_robot.ros.environment import apply_loopback_environment
from meta_robot.ros.graph import sim_graph
from meta_robot.ros.launcher import GraphProcesses

MOTION_THRESHOLD = 0.0005  # m: the TCP counts as moving once it is this far from where it rested


def measure(trials: int, step: float) -> np.ndarray:
    """Latencies (s) of ``trials`` step commands."""
    env = apply_loopback_environment()
    specs = sim_graph("default", bridge_parameters={"camera_rate": 0.0})
    latencies = []
    with GraphProcesses(specs, env) as graph, BackgroundNode("latency_bench") as ros:
        arm = ArmCommander(ros.node, source="bench")
        moved = threading.Event()
        rest: list[np.ndarray] = []

        def on_pose(msg: PoseStamped) -> None:
            if rest and np.linalg.norm(pose_from_msg(msg.pose).position - rest[0]) > MOTION_THRESHOLD:
                moved.set()

        ros.node.create_subscription(PoseStamped, "ee_pose", on_pose, 10)
        while arm.pose is None:
            graph.check_running()
            time.sleep(0.1)
        base = np.array([0.5, 0.0, 0.3])
        for i in range(trials):
            start = arm.move_to(base, settle=0.6)  # at rest, with a live command stream
            rest[:] = [start.reached]
            moved.clear()
            target = Pose(base + [0.0, step if i % 2 == 0 else -step, 0.0], DOWN)
            t0 = time.perf_counter()
            while not moved.is_set() and time.perf_counter() - t0 < 1.0:
                arm.send(target, 0.08)
                moved.wait(0.005)
            latencies.append(time.perf_counter() - t0)
            rest.clear()
    return np.array(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--step", type=float, default=0.02, help="m, size of the step command")
    parser.add_argument("--plot", type=Path, default=None, help="write a latency histogram PNG here")
    args = parser.parse_args()
    lat = measure(args.trials, args.step) * 1e3
    print(f"command -> first motion (sim bridge, real time, {len(lat)} trials, {os.cpu_count()} cores)")
    p50, p99 = np.percentile(lat, [50, 99])
    print(f"  p50 {p50:.1f} ms   p99 {p99:.1f} ms   max {lat.max():.1f} ms")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(lat, bins=20)
        ax.set_xlabel("command -> first motion (ms)")
        ax.set_ylabel("trials")
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
        print(f"  histogram: {args.plot}")


if __name__ == "__main__":
    sys.exit(main())
