"""Episode metadata (``episode.yaml``): what the recorder knows about an episode beyond its messages.

This is the contract between the recorder and the dataset tools (see the recording layout in the
design notes): a finished episode is ``<root>/<episode_id>/`` (a rosbag2 folder with MCAP storage
plus ``episode.yaml``); the one being recorded is ``<root>/.open/<episode_id>/``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FORMAT = "meta_robot.episode/1"
EPISODE_FILE = "episode.yaml"
OPEN_DIR = ".open"
OUTCOMES = ("success", "failure", "unknown")
_SEQUENCE = re.compile(r"^\d{8}-\d{6}-.+-(\d{4,})$")


@dataclass
class InterventionSpan:
    """An interval in which the operator, not the policy, was in control (ROS time, ns)."""

    start_ns: int
    end_ns: int
    device: str = ""


@dataclass
class TopicInfo:
    """Per-topic summary: message type, messages written, messages dropped (writer queue full)."""

    type: str
    count: int = 0
    dropped: int = 0


@dataclass
class CameraCalibration:
    """A camera's intrinsics, from its latest CameraInfo (``k`` row-major 3x3, ``d`` distortion)."""

    width: int
    height: int
    k: list[float]
    d: list[float]
    distortion_model: str
    frame_id: str


@dataclass
class EpisodeMetadata:
    """The content of ``episode.yaml`` (format ``meta_robot.episode/1``)."""

    episode_id: str
    task: str = ""
    skill: str = ""
    arguments: list[str] = field(default_factory=list)
    seed: int = -1
    operator: str = ""
    outcome: str = "unknown"
    complete: bool = False
    start_time_ns: int = 0
    end_time_ns: int = 0
    interventions: list[InterventionSpan] = field(default_factory=list)
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    calibration: dict[str, CameraCalibration] = field(default_factory=dict)
    software: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")

    @property
    def duration_s(self) -> float:
        """Seconds from start to end (0 while the end is unknown)."""
        return max(0, self.end_time_ns - self.start_time_ns) * 1e-9

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping, keys in the contract's order."""
        return {
            "format": FORMAT,
            "episode_id": self.episode_id,
            "task": self.task,
            "skill": self.skill,
            "arguments": list(self.arguments),
            "seed": int(self.seed),
            "operator": self.operator,
            "outcome": self.outcome,
            "complete": bool(self.complete),
            "start_time_ns": int(self.start_time_ns),
            "end_time_ns": int(self.end_time_ns),
            "duration_s": round(self.duration_s, 6),
            "interventions": [dataclasses.asdict(s) for s in self.interventions],
            "topics": {t: dataclasses.asdict(i) for t, i in sorted(self.topics.items())},
            "calibration": {c: dataclasses.asdict(i) for c, i in sorted(self.calibration.items())},
            "software": dict(self.software),
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeMetadata:
        """Parse a mapping read from ``episode.yaml``; refuses another format."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file (format: {data.get('format')!r})")
        return cls(
            episode_id=str(data["episode_id"]),
            task=str(data.get("task", "")),
            skill=str(data.get("skill", "")),
            arguments=[str(a) for a in data.get("arguments") or []],
            seed=int(data.get("seed", -1)),
            operator=str(data.get("operator", "")),
            outcome=str(data.get("outcome", "unknown")),
            complete=bool(data.get("complete", False)),
            start_time_ns=int(data.get("start_time_ns", 0)),
            end_time_ns=int(data.get("end_time_ns", 0)),
            interventions=[InterventionSpan(**s) for s in data.get("interventions") or []],
            topics={t: TopicInfo(**i) for t, i in (data.get("topics") or {}).items()},
            calibration={c: CameraCalibration(**i) for c, i in (data.get("calibration") or {}).items()},
            software=dict(data.get("software") or {}),
            notes=str(data.get("notes", "")),
        )

    def save(self, folder: Path) -> Path:
        """Write ``<folder>/episode.yaml`` atomically (temp file, fsync, rename): a crash leaves the
        old or the new file, never half of one."""
        path = Path(folder) / EPISODE_FILE
        tmp = path.with_suffix(".yaml.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, folder: Path) -> EpisodeMetadata:
        """Read ``<folder>/episode.yaml``."""
        with open(Path(folder) / EPISODE_FILE, encoding="utf-8") as f:
            return cls.from_dict(yaml.safe_load(f))


def next_sequence(root: Path) -> int:
    """One more than the highest sequence number among finished and open episodes under ``root``."""
    root = Path(root)
    names = [p.name for p in root.iterdir()] if root.is_dir() else []
    if (root / OPEN_DIR).is_dir():
        names += [p.name for p in (root / OPEN_DIR).iterdir()]
    numbers = [int(m.group(1)) for n in names if (m := _SEQUENCE.match(n))]
    return max(numbers, default=0) + 1


def make_episode_id(root: Path, skill: str, wall_time: float | None = None) -> str:
    """``<YYYYmmdd-HHMMSS>-<skill or "teleop">-<4-digit sequence>``, unique under ``root``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if wall_time is None else wall_time))
    name = re.sub(r"[^A-Za-z0-9_]+", "_", skill).strip("_") or "teleop"
    return f"{stamp}-{name}-{next_sequence(root):04d}"


def software_info(ros_distro: str | None = None) -> dict[str, Any]:
    """The code that recorded an episode: package version, ``git describe`` of a source checkout."""
    from meta_robot import __version__

    source = Path(__file__).resolve().parents[2]
    git: str | None = None
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            git = result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = None
    return {"meta_robot": __version__, "git": git, "ros_distro": ros_distro or os.environ.get("ROS_DISTRO")}
