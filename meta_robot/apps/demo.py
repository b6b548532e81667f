"""The bring-up demo: start the simulated graph, drive the arm through targets over ROS, plot it.

One of the targets lies outside the workspace box: the safety layer must refuse it and the arm must
stay inside. Everything travels over DDS between separate processes, as on the robot.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meta_robot.apps.sim_session import sim_session
from meta_robot.ros.commander import ArmCommander, MoveResult
from meta_robot.ros.graph import sim_graph
from meta_robot.safety.limits import SafetyLimits

# (name, TCP position in the base frame, m). The fifth lies beyond the box's x limit on purpose.
DEMO_TARGETS: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("above desk centre", (0.50, 0.00, 0.30)),
    ("left, low", (0.40, 0.20, 0.20)),
    ("right, low", (0.45, -0.15, 0.15)),
    ("near, high", (0.35, -0.10, 0.45)),
    ("outside the workspace", (0.90, 0.00, 0.30)),
    ("far, over the objects", (0.60, 0.05, 0.25)),
    ("home", (0.45, 0.00, 0.35)),
)
REACHED_TOLERANCE = 0.01  # m


@dataclass
class DemoReport:
    """Per-target outcomes and where the plot went."""

    results: list[tuple[str, MoveResult]]
    plot: Path

    @property
    def inside_targets_reached(self) -> bool:
        """Every target inside the box reached within REACHED_TOLERANCE."""
        limits = SafetyLimits()
        return all(r.error <= REACHED_TOLERANCE for _, r in self.results if limits.contains(r.target))


def run_demo(
    out_dir: Path,
    scenario: str = "default",
    seed: int = 0,
    targets: Sequence[tuple[str, tuple[float, float, float]]] = DEMO_TARGETS,
    echo: Callable[[str], None] = print,
) -> DemoReport:
    """Bring up the sim graph, visit ``targets``, print tracking errors, write ``demo_tracking.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    limits = SafetyLimits()
    echo("starting the simulated workcell (DDS on loopback, a private domain)")
    results: list[tuple[str, MoveResult]] = []
    with sim_session(
        sim_graph(scenario, seed), "demo_commander", out_dir / "logs", operator=False
    ) as session:
        commander = ArmCommander(session.node, frame_id=limits.base_frame, source="demo")
        session.wait_until("the sim bridge's ee_pose", lambda: commander.pose is not None, 120.0)
        echo(f"workcell up on ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}")
        echo(f"{'target':<24}{'commanded (m)':>24}{'reached (m)':>24}{'error (mm)':>12}  outcome")
        for name, position in targets:
            result = commander.move_to(np.array(position))
            session.check_running()
            results.append((name, result))
            echo(_row(name, result, limits))
    plot = plot_tracking(results, limits, out_dir / "demo_tracking.png")
    report = DemoReport(results, plot)
    verdict = "all targets inside the box reached" if report.inside_targets_reached else "TARGETS MISSED"
    echo(f"{verdict}; plot written to {plot}")
    return report


def _row(name: str, result: MoveResult, limits: SafetyLimits) -> str:
    fmt = "[{:.3f}, {:.3f}, {:.3f}]"
    if limits.contains(result.target):
        outcome = "reached" if result.error <= REACHED_TOLERANCE else "MISSED"
    else:
        inside = limits.contains(result.reached, margin=0.005)
        reasons = sorted({r.split(": ")[1] for r in result.refusals if ": " in r})
        outcome = f"refused by safety ({', '.join(reasons) or 'no refusal seen'}); arm " + (
            "stayed inside" if inside else "LEFT THE BOX"
        )
    return (
        f"{name:<24}{fmt.format(*result.target):>24}{fmt.format(*result.reached):>24}"
        f"{result.error * 1e3:>12.1f}  {outcome}"
    )


def plot_tracking(results: list[tuple[str, MoveResult]], limits: SafetyLimits, path: Path) -> Path:
    """Commanded vs reached TCP position over time (x, y, z) and a top view with the workspace box."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    offset = 0.0
    commanded, measured, times = [], [], []
    for _, result in results:
        for s in result.samples:
            times.append(offset + s.t)
            commanded.append(s.commanded)
            measured.append(s.measured)
        offset += result.samples[-1].t if result.samples else 0.0
    t = np.array(times)
    cmd = np.array(commanded).reshape(-1, 3)
    meas = np.array(measured).reshape(-1, 3)
    for i, (axis, ax) in enumerate(zip("xyz", axes.flat[:3], strict=True)):
        ax.axhspan(limits.workspace_min[i], limits.workspace_max[i], color="tab:green", alpha=0.08)
        ax.plot(t, cmd[:, i], "--", color="tab:gray", label="commanded")
        ax.plot(t, meas[:, i], color="tab:blue", label="reached")
        ax.set_ylabel(f"{axis} (m)")
        ax.set_xlabel("time (s)")
    axes.flat[0].legend(loc="best")
    top = axes.flat[3]
    lo, hi = limits.workspace_min, limits.workspace_max
    top.add_patch(
        plt.Rectangle((lo[0], lo[1]), hi[0] - lo[0], hi[1] - lo[1], fill=False, ec="tab:green", label="box")
    )
    top.plot(meas[:, 0], meas[:, 1], color="tab:blue", lw=1)
    for name, result in results:
        inside = limits.contains(result.target)
        top.plot(*result.target[:2], "o" if inside else "x", color="tab:gray" if inside else "tab:red")
        top.annotate(name, result.target[:2], fontsize=7, xytext=(3, 3), textcoords="offset points")
    top.set_xlabel("x (m)")
    top.set_ylabel("y (m)")
    top.set_aspect("equal")
    top.set_title("top view: targets (x = refused) and TCP path")
    fig.suptitle("meta_robot sim bring-up: commanded vs reached TCP position")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
