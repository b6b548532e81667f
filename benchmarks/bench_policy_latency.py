"""Camera frame -> robot command through the graph, against the same model called in-process.

    .venv/bin/python benchmarks/bench_policy_latency.py [--policy goal_conditioned_bc] [--seconds 20]
        [--camera-rate 15] [--plot out/policy_latency.png]

Runs the sim bridge (cameras at ``--camera-rate``) and the policy server as separate processes and
sends one long skill goal. For every control step the server stamps ``skill_status`` with the camera
frame it acted on; the command of that step is matched by arrival order. Reported: frame -> command
received (what the arm's safety layer sees: the frame's age when its command arrives, including the
wait for the next control tick), the command's own stamp minus the frame's (server-side), and the
in-process ``Policy.act`` time on images of the sim camera's size. The ratio compares graph and
in-process medians.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np
from meta_robot_interfaces.action import ExecuteSkill
from meta_robot_interfaces.msg import ArmCommand, SkillStatus
from rclpy.action import ActionClient

from meta_robot.learning.checkpoint_registry import resolve_checkpoint
from meta_robot.learning.policy import Observation, load_policy
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.environment import apply_loopback_environment
from meta_robot.ros.graph import learned_skill_nodes, sim_graph
from meta_robot.ros.launcher import GraphProcesses

SIM_CAMERA_SHAPE = (128, 128, 3)  # config/sim_bridge.yaml camera_height, camera_width


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def through_graph(policy: str, seconds: float, camera_rate: float) -> dict[str, np.ndarray]:
    env = apply_loopback_environment()
    specs = [
        *sim_graph("default", seed=7, bridge_parameters={"camera_rate": camera_rate}),
        *learned_skill_nodes(policy=policy, classifier=None),
    ]
    lock = threading.Lock()
    frames: list[float] = []  # frame stamps of control steps, in order
    commands: list[tuple[float, float]] = []  # (command stamp, arrival time)
    with GraphProcesses(specs, env) as graph, BackgroundNode("policy_latency_bench") as ros:
        last_step = [0]

        def on_status(msg: SkillStatus) -> None:
            # a status whose step advanced follows a step that sent a command (ticks that waited for
            # inputs repeat the step count and carry no frame)
            if msg.state == SkillStatus.RUNNING and msg.step > last_step[0]:
                last_step[0] = msg.step
                with lock:
                    frames.append(_seconds(msg.header.stamp))

        def on_command(msg: ArmCommand) -> None:
            if msg.source.startswith("policy/"):
                arrival = ros.node.get_clock().now().nanoseconds * 1e-9
                with lock:
                    commands.append((_seconds(msg.header.stamp), arrival))

        ros.node.create_subscription(SkillStatus, "skill_status", on_status, 50)
        ros.node.create_subscription(ArmCommand, "robot_command", on_command, 50)
        client = ActionClient(ros.node, ExecuteSkill, "policy/execute_skill")
        while not client.wait_for_server(timeout_sec=1.0):
            graph.check_running()
        goal = client.send_goal_async(ExecuteSkill.Goal(skill="open_drawer", arguments=[], timeout=seconds))
        while not goal.done():
            time.sleep(0.05)
        result = goal.result().get_result_async()
        while not result.done():
            graph.check_running()
            time.sleep(0.1)
    n = min(len(frames), len(commands))
    frame = np.array(frames[:n])
    stamp = np.array([c[0] for c in commands[:n]])
    arrival = np.array([c[1] for c in commands[:n]])
    return {"frame_to_arrival": arrival - frame, "frame_to_stamp": stamp - frame}


def in_process(policy_name: str, image_shape: tuple[int, int, int], steps: int = 100) -> np.ndarray:
    policy = load_policy(resolve_checkpoint(policy_name, "policy"))
    policy.warm_up()
    rng = np.random.default_rng(0)
    images = {cam: rng.integers(0, 255, image_shape, dtype=np.uint8) for cam in policy.cameras}
    state = np.array(
        [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8, 0.08, 0.45, 0.0, 0.25, 1.0, 0.0, 0.0, 0.0], np.float32
    )
    episode = policy.start(policy.example_request())
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        policy.act([episode], [Observation(images, state)])
        times.append(time.perf_counter() - t0)
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="goal_conditioned_bc")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--camera-rate", type=float, default=15.0)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    graph = through_graph(args.policy, args.seconds, args.camera_rate)
    local = in_process(args.policy, SIM_CAMERA_SHAPE)
    ms = {k: 1e3 * v for k, v in graph.items()}
    local_ms = 1e3 * local
    print(
        f"{len(ms['frame_to_arrival'])} control steps through the graph (camera {args.camera_rate:g} Hz, "
        "policy server 10 Hz), one run:"
    )
    for name, values in ms.items():
        print(
            f"  {name.replace('_', ' ')}: p50 {np.percentile(values, 50):.1f} ms, "
            f"p99 {np.percentile(values, 99):.1f} ms"
        )
    print(
        f"  in-process Policy.act on the sim camera's 128x128 images: "
        f"p50 {np.percentile(local_ms, 50):.1f} ms, "
        f"p99 {np.percentile(local_ms, 99):.1f} ms"
    )
    ratio = np.percentile(ms["frame_to_arrival"], 50) / np.percentile(local_ms, 50)
    print(f"  ratio graph / in-process (p50): {ratio:.1f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(ms["frame_to_arrival"], bins=40, alpha=0.7, label="frame -> command arrival (graph)")
        ax.hist(local_ms, bins=40, alpha=0.7, label="Policy.act in-process")
        ax.set_xlabel("ms")
        ax.set_ylabel("steps")
        ax.legend()
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=100)
        print(f"histogram: {args.plot}")


if __name__ == "__main__":
    main()
