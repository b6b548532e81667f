"""Data engine throughput against its physical limit, in one run.

For W = 1 and 2 workers: scripted demonstrations collected (episodes/hour, simulated physics steps/s)
and rendered into the cache at the policy's resolution (steps/s), and the two together: an episode
"with its images". Beside it, the limit for the same episodes on this machine: raw MuJoCo stepping
(``mj_step`` for as many physics steps as each episode took, no controller, no operator, no safety
layer) plus rendering both cameras once per control step, in one process. The ratio engine / raw on
one worker says what the engine's own work (IK control at 500 Hz, the operator, the safety layer at
100 Hz, storing states) costs. Last, policy training samples/s on the rendered data (CPU, and CUDA
when present).

    .venv/bin/python benchmarks/bench_engine.py --episodes 4
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco

from meta_robot.core.observation import CAMERAS, IMAGE_SIZE
from meta_robot.engine.collect import collect
from meta_robot.engine.dataset import EngineDataset, render_dataset
from meta_robot.engine.store import iter_episodes


def raw_limit(root: Path) -> tuple[float, int, int]:
    """Seconds to step and render the stored episodes with nothing but MuJoCo (one process)."""
    from meta_robot.sim import snapshot
    from meta_robot.sim.rendering import WorkcellRenderer
    from meta_robot.sim.workcell import Workcell

    wc = Workcell()
    renderer = WorkcellRenderer(wc)
    m, d = wc.model, wc.data
    physics_steps = frames = 0
    started = time.perf_counter()
    for episode in iter_episodes(root):
        snapshot.restore(m, d, episode.physics[0])
        per_step = max(1, round(1.0 / episode.meta.fps / m.opt.timestep))
        for _ in range(len(episode)):
            mujoco.mj_step(m, d, nstep=per_step)
            for camera in CAMERAS:
                renderer.render(camera)
            physics_steps += per_step
            frames += 1
    return time.perf_counter() - started, physics_steps, frames


def training_rate(root: Path, device: str | None) -> float:
    from meta_robot.learning.train_policy import PolicyTrainSettings, fit_policy

    dataset = EngineDataset(root, image_size=IMAGE_SIZE, progress=False)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        settings = PolicyTrainSettings(epochs=1)
        options = {"pooling": "spatial_softmax"}
        result = fit_policy(dataset, out, settings, options, resume=False, device=device, progress=False)
        seconds = time.perf_counter() - started
    return result.metrics["samples"]["train"] / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=4, help="demonstrations per skill")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"data engine: {args.episodes} scripted demonstrations per skill (6 skills), images {IMAGE_SIZE}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            root = Path(tmp) / f"w{w}"
            report = collect(root, ["all"], args.episodes, workers=w, progress=False)
            render = render_dataset(root, IMAGE_SIZE, w, progress=False)
            n = sum(report.episodes.values())
            timestep = 0.002
            physics = report.sim_seconds / timestep
            total = report.wall_seconds + render.wall_seconds
            rows.append((w, n, report, render, physics, total))
            print(
                f"  W={w}: collect {n} episodes in {report.wall_seconds:.1f} s = "
                f"{report.episodes_per_hour:,.0f} episodes/h, {physics / report.wall_seconds:,.0f} physics "
                f"steps/s; render {render.frames} steps x {len(CAMERAS)} cameras in "
                f"{render.wall_seconds:.1f} s = {render.frames_per_second:,.0f} steps/s; with images "
                f"{3600 * n / total:,.0f} episodes/h"
            )
        root = Path(tmp) / f"w{args.workers[0]}"
        seconds, physics_steps, frames = raw_limit(root)
        n = rows[0][1]
        raw_rate = 3600 * n / seconds
        engine_rate = 3600 * n / rows[0][5]
        print(
            f"  raw MuJoCo, same {n} episodes, 1 process: {physics_steps:,} mj_steps + {frames} x "
            f"{len(CAMERAS)} renders in {seconds:.1f} s = {raw_rate:,.0f} episodes/h"
        )
        print(f"  ratio engine (W={args.workers[0]}, with images) / raw = {engine_rate / raw_rate:.2f}")
        rate = training_rate(root, "cpu")
        print(f"  policy training on these {rows[0][3].frames} steps: {rate:,.0f} samples/s (CPU)")
        import torch

        if torch.cuda.is_available():
            rate = training_rate(root, "cuda")
            print(f"  policy training: {rate:,.0f} samples/s ({torch.cuda.get_device_name()})")
        else:
            print("  policy training on CUDA: no GPU on this machine")


if __name__ == "__main__":
    main()
