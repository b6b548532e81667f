"""What a folder of episodes holds: per-skill counts, success rates, durations, interventions.

Reads only ``episode.yaml`` files plus, for frame counts, the timestamps of the recordings (images
are never decoded), so it stays quick on a large dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from meta_robot.dataset.episodes import EpisodeError, list_episodes
from meta_robot.dataset.frames import DEFAULT_FPS, resample_episode

logger = logging.getLogger(__name__)


@dataclass
class SkillInfo:
    """Summary of one skill's episodes (``teleop`` for episodes recorded without a skill)."""

    skill: str
    episodes: int = 0
    successes: int = 0
    failures: int = 0
    unknown: int = 0
    interventions: int = 0  # intervention spans, all episodes together
    episodes_with_interventions: int = 0
    frames: int = 0  # resampled steps at the info's fps
    durations_s: list[float] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        """Successes over labelled episodes (unknown outcomes left out); None if none is labelled."""
        labelled = self.successes + self.failures
        return self.successes / labelled if labelled else None

    @property
    def mean_duration_s(self) -> float:
        return sum(self.durations_s) / len(self.durations_s) if self.durations_s else 0.0

    @property
    def min_duration_s(self) -> float:
        return min(self.durations_s, default=0.0)

    @property
    def max_duration_s(self) -> float:
        return max(self.durations_s, default=0.0)


@dataclass
class DatasetInfo:
    """Summary of a dataset root: one :class:`SkillInfo` per skill plus the total."""

    root: Path
    fps: float
    skills: dict[str, SkillInfo]
    total: SkillInfo
    unreadable: list[str] = field(default_factory=list)  # episodes whose recording could not be read


def _add(info: SkillInfo, outcome: str, duration_s: float, interventions: int, frames: int) -> None:
    info.episodes += 1
    info.successes += outcome == "success"
    info.failures += outcome == "failure"
    info.unknown += outcome not in ("success", "failure")
    info.interventions += interventions
    info.episodes_with_interventions += interventions > 0
    info.frames += frames
    info.durations_s.append(duration_s)


def dataset_info(
    root: str | Path, fps: float = DEFAULT_FPS, count_frames: bool = True, skills: Iterable[str] | None = None
) -> DatasetInfo:
    """Summarise the finished episodes under ``root``; ``count_frames=False`` reads only metadata.
    A data engine folder is summarised from its episode files (their steps are the frames)."""
    from meta_robot.engine.store import is_engine_dataset

    if is_engine_dataset(root):
        return _engine_info(Path(root), fps, skills)
    per_skill: dict[str, SkillInfo] = {}
    total = SkillInfo("all")
    unreadable = []
    for episode in list_episodes(root, skills):
        frames = 0
        if count_frames:
            try:
                frames = len(resample_episode(episode, fps=fps, decode_images=False))
            except EpisodeError as exc:
                logger.warning("%s", exc)
                unreadable.append(episode.episode_id)
        meta = episode.metadata
        info = per_skill.setdefault(episode.skill, SkillInfo(episode.skill))
        for target in (info, total):
            _add(target, meta.outcome, meta.duration_s, len(meta.interventions), frames)
    return DatasetInfo(Path(root), float(fps), dict(sorted(per_skill.items())), total, unreadable)


def _engine_info(root: Path, fps: float, skills: Iterable[str] | None) -> DatasetInfo:
    """Engine episodes: one frame per stored control step; an intervention is a stretch of steps the
    expert executed in a learner's rollout (DAgger)."""
    import numpy as np

    from meta_robot.core.observation import CONTROL_RATE
    from meta_robot.engine.store import EpisodeFileError, episode_files, read_episode

    if fps != CONTROL_RATE:
        raise ValueError(f"engine episodes are stored at the control rate, {CONTROL_RATE:g} Hz, not {fps:g}")
    per_skill: dict[str, SkillInfo] = {}
    total = SkillInfo("all")
    unreadable = []
    for path in episode_files(root, list(skills) if skills is not None else None):
        try:
            episode = read_episode(path)
        except EpisodeFileError as exc:
            logger.warning("%s", exc)
            unreadable.append(path.name)
            continue
        expert = np.concatenate([[False], episode.expert_takeover]).astype(np.int8)
        takeovers = int(np.count_nonzero(np.diff(expert) == 1))
        info = per_skill.setdefault(episode.skill, SkillInfo(episode.skill))
        for target in (info, total):
            _add(target, episode.meta.outcome, episode.meta.duration, takeovers, len(episode))
    return DatasetInfo(root, float(fps), dict(sorted(per_skill.items())), total, unreadable)


def format_info(info: DatasetInfo) -> str:
    """A plain-text table, one row per skill and a total row."""
    header = (
        "skill",
        "episodes",
        "success",
        "failure",
        "unknown",
        "success rate",
        "duration s (mean/min/max)",
        "interventions (episodes)",
        f"frames @{info.fps:g} Hz",
    )

    def row(s: SkillInfo) -> tuple[str, ...]:
        rate = f"{100 * s.success_rate:.0f}%" if s.success_rate is not None else "-"
        durations = f"{s.mean_duration_s:.1f} / {s.min_duration_s:.1f} / {s.max_duration_s:.1f}"
        return (
            s.skill,
            str(s.episodes),
            str(s.successes),
            str(s.failures),
            str(s.unknown),
            rate,
            durations,
            f"{s.interventions} ({s.episodes_with_interventions})",
            str(s.frames),
        )

    rows = [header, *(row(s) for s in info.skills.values()), row(info.total)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    text = f"dataset {info.root}: {info.total.episodes} finished episodes\n" + "\n".join(lines)
    if info.unreadable:
        text += f"\nunreadable recordings (not counted in frames): {', '.join(info.unreadable)}"
    return text


def plot_info(info: DatasetInfo, png_path: str | Path) -> Path:
    """Bar charts of success rate and episode count per skill, and a histogram of durations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skills = list(info.skills.values())
    names = [s.skill for s in skills]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    rates = [100 * (s.success_rate or 0.0) for s in skills]
    axes[0].bar(names, rates, color="tab:green")
    axes[0].set_ylim(0, 100)
    axes[0].set_ylabel("success rate (%) of labelled episodes")
    axes[0].set_title("success rate per skill")
    axes[1].bar(names, [s.successes for s in skills], label="success", color="tab:green")
    axes[1].bar(
        names,
        [s.failures for s in skills],
        bottom=[s.successes for s in skills],
        label="failure",
        color="tab:red",
    )
    axes[1].bar(
        names,
        [s.unknown for s in skills],
        bottom=[s.successes + s.failures for s in skills],
        label="unknown",
        color="tab:gray",
    )
    axes[1].set_ylabel("episodes")
    axes[1].set_title("episodes per skill")
    axes[1].legend()
    axes[2].hist(info.total.durations_s or [0.0], bins=min(20, max(1, len(info.total.durations_s))))
    axes[2].set_xlabel("duration (s)")
    axes[2].set_ylabel("episodes")
    axes[2].set_title("episode durations")
    for ax in axes[:2]:
        ax.tick_params(axis="x", rotation=30)
    path = Path(png_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
