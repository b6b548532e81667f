"""The executive's overhead between skills: from one skill's result to the next skill's dispatch.

    .venv/bin/python benchmarks/bench_executive.py [--task fill_drawer] [--episodes 5]
        [--camera-rate 15] [--backend auto] [--out out/executive.json]

The real executive core, planner and state estimator run a task against a symbolic world whose
skills finish instantly, while a thread plays the success classifier: at ``--camera-rate`` it
publishes predicate frames for the world's current state into the estimator, as the classifier node
does for each camera frame. What remains between two skills is what the executive itself costs:
waiting for a window of fresh classifier frames (the dominant part, set by the camera rate), the
effect check, the plan-validity check by progression, and planning when a replan is needed. Each
episode also takes one object back out of the drawer after its first placement, so replanning is
part of the figures.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np

from meta_robot.planning import Planner, load_tasks
from meta_robot.planning.executive import SUCCEEDED, Executive, SkillOutcome
from meta_robot.planning.state_estimation import PredicateFrame, StateEstimator
from meta_robot.planning.symbolic import all_atoms, atom_text, progress
from meta_robot.skills.registry import GroundSkill, load_registry


class InstantWorld:
    """Skills take effect at once; the first placement is undone once (a replan)."""

    def __init__(self, state: frozenset) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.results: list[float] = []  # perf_counter when each skill returned
        self.dispatches: list[float] = []
        self._undone = False

    def run(self, skill: GroundSkill) -> SkillOutcome:
        self.dispatches.append(time.perf_counter())
        with self.lock:
            self.state = progress(self.state, skill)
            if skill.name.startswith("place") and not self._undone:
                self._undone = True
                obj = skill.arguments[0]
                self.state = (self.state - {a for a in self.state if a[1:] == (obj,)}) | {("on_desk", obj)}
        self.results.append(time.perf_counter())
        return SkillOutcome(SUCCEEDED, 1.0)


def classifier_stream(world: InstantWorld, estimator: StateEstimator, atoms, rate: float, stop) -> None:
    texts = [atom_text(a) for a in atoms]
    while not stop.is_set():
        with world.lock:
            truth = [a in world.state for a in atoms]
        estimator.add(
            PredicateFrame.from_lists(texts, [0.99 if t else 0.01 for t in truth], [0.5] * len(atoms), truth)
        )
        time.sleep(1.0 / rate)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="fill_drawer")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--camera-rate", type=float, default=15.0, help="Hz of classifier frames")
    parser.add_argument("--window", type=int, default=5, help="frames voted over per observation")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    registry = load_registry()
    task = load_tasks(registry)[args.task]
    planner = Planner(registry, args.backend)
    atoms = all_atoms(registry)
    start = frozenset(
        {("hand_empty",), ("drawer_closed",)} | {("on_desk", o) for o in registry.types["object"]}
    )
    planner.plan(start, task.goal)  # the import and first search, as the node does at start-up
    gaps: list[float] = []
    planning: list[float] = []
    replans = 0
    for _ in range(args.episodes):
        world = InstantWorld(start)
        estimator = StateEstimator(args.window)
        stop = threading.Event()
        feeder = threading.Thread(
            target=classifier_stream, args=(world, estimator, atoms, args.camera_rate, stop), daemon=True
        )
        feeder.start()
        executive = Executive(planner.plan, world.run, lambda e=estimator: e.wait(timeout=5.0))
        report = executive.run(task.goal)
        stop.set()
        feeder.join()
        assert report.success, report.message
        gaps += [d - r for r, d in zip(world.results, world.dispatches[1:], strict=False)]
        planning += report.planning_seconds
        replans += report.replans
    gaps_ms = np.array(gaps) * 1e3
    figures = {
        "task": args.task,
        "backend": planner.backend,
        "camera_rate_hz": args.camera_rate,
        "window_frames": args.window,
        "episodes": args.episodes,
        "gaps": len(gaps),
        "replans": replans,
        "overhead_p50_ms": float(np.percentile(gaps_ms, 50)),
        "overhead_p99_ms": float(np.percentile(gaps_ms, 99)),
        "overhead_max_ms": float(gaps_ms.max()),
        "frame_wait_floor_ms": 1e3 * args.window / args.camera_rate,
        "planning_p50_ms": float(np.percentile(np.array(planning) * 1e3, 50)),
    }
    print(
        f"executive overhead between skills ({args.task}, {planner.backend}, classifier at "
        f"{args.camera_rate:g} Hz, window {args.window}): p50 {figures['overhead_p50_ms']:.0f} ms, "
        f"p99 {figures['overhead_p99_ms']:.0f} ms, max {figures['overhead_max_ms']:.0f} ms over "
        f"{len(gaps)} gaps ({replans} replans); the wait for {args.window} fresh frames alone is "
        f"{figures['frame_wait_floor_ms']:.0f} ms; planning p50 {figures['planning_p50_ms']:.0f} ms"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
