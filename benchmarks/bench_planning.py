"""Symbolic planning: PDDL generation and search time per task and backend, in one process.

    .venv/bin/python benchmarks/bench_planning.py [--repeats 20] [--task fill_drawer ...]
        [--backend pyperplan ...] [--out out/planning.json]

Every task of config/tasks.yaml is planned from its scenario's start state (objects on the desk, hand
empty, drawer as the scenario has it) ``--repeats`` times by each installed backend, after one
untimed warm-up plan. Reported per task and backend: the plan length, and p50/p99 of the generation
time (writing the PDDL; for Fast Downward also reading it into unified-planning) and of the search
time (the backend call, process start-up included: Fast Downward's driver, pyperplan's worker).
unified-planning's one-off import and engine set-up are timed separately, first, since a process
pays them once.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from meta_robot.planning import Planner, available_backends, load_tasks
from meta_robot.planning import planner as planner_module
from meta_robot.skills.registry import load_registry


def start_state(registry, scenario: str) -> frozenset:
    """The atoms the classifiers report at a scenario's start (default: drawer closed)."""
    drawer = ("drawer_open",) if scenario == "drawer_open" else ("drawer_closed",)
    return frozenset({("hand_empty",), drawer} | {("on_desk", o) for o in registry.types["object"]})


def unified_planning_setup() -> dict[str, float]:
    """Seconds to import unified-planning with Fast Downward and to make the engine (once a process)."""
    start = time.perf_counter()
    import unified_planning.io  # noqa: F401
    import up_fast_downward  # noqa: F401

    imported = time.perf_counter()
    planner_module._make_fast_downward_engine()
    return {"import_s": imported - start, "engine_s": time.perf_counter() - imported}


def bench(planner: Planner, state: frozenset, goal, repeats: int) -> dict[str, object]:
    first = time.perf_counter()
    result = planner.plan(state, goal)  # warm-up (untimed in the figures)
    first = time.perf_counter() - first
    generate, search, total = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = planner.plan(state, goal)
        total.append(time.perf_counter() - start)
        generate.append(result.generate_seconds)
        search.append(result.search_seconds)
    return {
        "steps": len(result.steps),
        "plan": [str(step) for step in result.steps],
        "first_s": first,
        **{
            f"{name}_{q}_s": float(np.percentile(values, p))
            for name, values in (("generate", generate), ("search", search), ("total", total))
            for q, p in (("p50", 50), ("p99", 99))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--task", action="append", help="task name (repeatable; default: every task)")
    parser.add_argument("--backend", action="append", help="backend (repeatable; default: every installed)")
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    registry = load_registry()
    tasks = load_tasks(registry)
    names = args.task or list(tasks)
    backends = args.backend or available_backends()
    figures: dict[str, object] = {"repeats": args.repeats, "results": {}}
    print(f"symbolic planning, {args.repeats} repeats after one warm-up; backends: {', '.join(backends)}")
    if "fast-downward" in backends:
        setup = unified_planning_setup()
        figures["unified_planning"] = setup
        print(
            f"  unified-planning: import {setup['import_s']:.2f} s, Fast Downward engine set-up "
            f"{setup['engine_s']:.2f} s (once per process)"
        )
    print(
        f"  {'task':<16}{'backend':<15}{'steps':>5}  {'generate p50/p99 ms':>20}  "
        f"{'search p50/p99 ms':>18}  {'first plan ms':>13}"
    )
    for backend in backends:
        planner = Planner(registry, backend, time_limit=args.time_limit)
        for name in names:
            task = tasks[name]
            row = bench(planner, start_state(registry, task.scenario), task.goal, args.repeats)
            figures["results"][f"{name}/{backend}"] = row
            print(
                f"  {name:<16}{backend:<15}{row['steps']:>5}  "
                f"{row['generate_p50_s'] * 1e3:>9.1f} /{row['generate_p99_s'] * 1e3:>8.1f}  "
                f"{row['search_p50_s'] * 1e3:>8.1f} /{row['search_p99_s'] * 1e3:>7.1f}  "
                f"{row['first_s'] * 1e3:>13.1f}"
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
