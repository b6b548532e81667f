"""Raw MuJoCo stepping of the workcell, stepping with the Cartesian controller, and camera rendering.

    .venv/bin/python benchmarks/bench_sim_step.py [--seconds 5]

Also imported by bench_sim_bridge.py for the raw rate the ROS node is compared with.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from meta_robot.core.arm import ArmTarget, Pose
from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell

DOWN = np.array([1.0, 0.0, 0.0, 0.0])


def _rate(step, seconds: float, batch: int) -> float:
    """Calls of ``step(batch)`` per second, times batch, over ``seconds``."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step(batch)
        count += batch
    return count / elapsed


def raw_step_rate(seconds: float = 5.0) -> float:
    """mj_step calls per second on the workcell scene (arm holding its home pose)."""
    wc = Workcell("default")
    wc.reset(0)
    return _rate(wc.step, seconds, 100)


def controlled_step_rate(seconds: float = 5.0) -> float:
    """Physics steps per second with the IK controller running before every step."""
    wc = Workcell("default")
    wc.reset(0)
    arm = SimArm(wc)
    arm.connect()
    arm.command(ArmTarget(Pose(np.array([0.5, 0.1, 0.25]), DOWN), 0.08))
    return _rate(arm.step, seconds, 100)


def render_rates(seconds: float = 5.0, size: tuple[int, int] = (128, 128)) -> dict[str, float]:
    """Frames per second of each camera (RGB + depth from one pass) for both robot mesh sets."""
    from meta_robot.sim.rendering import WorkcellRenderer

    wc = Workcell("default")
    wc.reset(0)
    rates = {}
    for meshes in ("collision", "visual"):
        renderer = WorkcellRenderer(wc, *size, robot_meshes=meshes)
        for camera in ("front", "wrist"):
            rates[f"{camera} ({meshes} robot meshes)"] = _rate(
                lambda n, c=camera, r=renderer: [r.render(c) for _ in range(n)], seconds / 4, 5
            )
        renderer.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    raw = raw_step_rate(args.seconds)
    controlled = controlled_step_rate(args.seconds)
    print(f"workcell physics (dt 2 ms, {os.cpu_count()} cores)")
    print(f"  raw mj_step                 {raw:10.0f} steps/s  ({raw * 0.002:.1f}x real time)")
    print(f"  with IK controller          {controlled:10.0f} steps/s  ({controlled * 0.002:.1f}x real time)")
    print("rendering 128x128 RGB + depth (MUJOCO_GL=" + os.environ["MUJOCO_GL"] + ")")
    for name, fps in render_rates(args.seconds).items():
        print(f"  {name:<34}{fps:8.1f} frames/s")


if __name__ == "__main__":
    main()
