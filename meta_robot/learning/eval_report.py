"""A skill evaluation's results and report, wherever the episodes ran (through the graph or in the
data engine's workers): success per grounding with 95 % Wilson intervals, a YAML of every episode
and a bar plot, in the same format for both so the two can be set side by side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from meta_robot.learning.metrics import wilson_interval


@dataclass
class EpisodeResult:
    seed: int
    skill: str  # ground skill, e.g. "(pick red_cube)"
    success: bool
    server_outcome: str  # what the policy server answered (succeeded, timed_out, preempted...)
    duration: float  # s of wall time from goal to judgement
    message: str = ""


@dataclass
class SkillEvalReport:
    skill: str
    policy: str
    episodes: list[EpisodeResult] = field(default_factory=list)
    setup_failures: int = 0

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def success_rate(self) -> float:
        return self.successes / len(self.episodes) if self.episodes else 0.0

    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, len(self.episodes))

    def by_grounding(self) -> dict[str, tuple[int, int]]:
        tally: dict[str, tuple[int, int]] = {}
        for e in self.episodes:
            ok, n = tally.get(e.skill, (0, 0))
            tally[e.skill] = (ok + e.success, n + 1)
        return tally

    def summary(self) -> str:
        low, high = self.interval()
        parts = ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in self.by_grounding().items())
        return (
            f"{self.skill} ({self.policy}): {self.successes}/{len(self.episodes)} = {self.success_rate:.1%} "
            f"(95 % CI {low:.1%}-{high:.1%}); {parts}; {self.setup_failures} seeds skipped (set-up failed)"
        )


def write_report(report: SkillEvalReport, out_dir: Path) -> None:
    """``<skill>.yaml`` (every episode) and ``<skill>.png`` (rate and interval per grounding)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low, high = report.interval()
    record = {
        "skill": report.skill,
        "policy": report.policy,
        "episodes": len(report.episodes),
        "successes": report.successes,
        "success_rate": report.success_rate,
        "ci95": [low, high],
        "setup_failures": report.setup_failures,
        "by_grounding": {k: {"successes": ok, "episodes": n} for k, (ok, n) in report.by_grounding().items()},
        "results": [asdict(e) for e in report.episodes],
    }
    (out_dir / f"{report.skill}.yaml").write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    names = ["all", *report.by_grounding()]
    counts = [(report.successes, len(report.episodes)), *report.by_grounding().values()]
    rates = [ok / n if n else 0.0 for ok, n in counts]
    intervals = [wilson_interval(ok, n) for ok, n in counts]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(names)), 3.5))
    ax.bar(names, rates, color=["tab:blue"] + ["tab:gray"] * (len(names) - 1))
    ax.errorbar(
        names,
        rates,
        yerr=[
            [r - lo for r, (lo, _) in zip(rates, intervals, strict=True)],
            [hi - r for r, (_, hi) in zip(rates, intervals, strict=True)],
        ],
        fmt="none",
        ecolor="black",
        capsize=4,
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95 % CI)")
    ax.set_title(f"{report.skill}: {report.successes}/{len(report.episodes)} with {report.policy}")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(out_dir / f"{report.skill}.png", dpi=100)
    plt.close(fig)
