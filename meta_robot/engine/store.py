"""The data engine's episode files: simulator states per control step, not images.

One ``.npz`` per episode under ``<root>/episodes/<skill>/``. Per step (at the schema's control rate)
it holds the physics state (:mod:`meta_robot.sim.snapshot`, enough to restore the step exactly and
render any camera at any size), the observed state vector, the commanded action, the scripted
expert's action for that step (equal to the action in the expert's own demonstrations; its relabel in
a learner's rollout) and whether the learner was acting. The metadata says what the episode was:
skill, arguments, scenario, seed, operator style, who acted, the outcome and the model fingerprint.
Files are written to a temporary name and renamed, so a reader never sees half an episode, and a
corrupt or foreign file is refused with its path named.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meta_robot.core.observation import ACTION_DIM, CONTROL_RATE, STATE_DIM

FORMAT = "meta_robot.engine_episode/1"
EPISODES_DIR = "episodes"
ARRAYS = ("physics", "state", "action", "expert_action", "learner_acting", "time")


class EpisodeFileError(ValueError):
    """An engine episode file that cannot be read: missing, truncated, corrupt or of another format."""


@dataclass(frozen=True)
class EngineEpisodeMeta:
    """What an engine episode is (stored as JSON beside its arrays)."""

    skill: str
    arguments: tuple[str, ...]
    scenario: str
    seed: int
    source: str  # "expert" (scripted demonstration), "dagger" (learner with expert labels), "eval"
    outcome: str  # "success" or "failure", from the skill's post-conditions on privileged state
    model_fingerprint: str
    fps: float = CONTROL_RATE
    style: dict[str, Any] = field(default_factory=dict)  # the scripted operator's per-episode draws
    duration: float = 0.0  # s of sim time
    round: int = 0  # DAgger round that produced it (0: demonstrations)
    expert_share: float = 1.0  # fraction of steps the expert's action was executed
    holds: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    notes: str = ""

    @property
    def episode_id(self) -> str:
        return episode_id(self.skill, self.arguments, self.seed, self.source, self.round)

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    @property
    def task(self) -> str:
        """The task of a whole-task episode ("" for a single skill's), as recorded episodes name it."""
        return self.skill[len("task-") :] if self.source == "task" else ""


def episode_id(skill: str, arguments: Sequence[str], seed: int, source: str, round: int = 0) -> str:
    """A name unique within a dataset and stable across reruns: a resumed collection skips it."""
    args = "-".join(arguments) or "none"
    return f"{skill}-{args}-{source}{round}-s{seed}"


@dataclass
class EngineEpisode:
    """One episode: metadata plus (T, ...) arrays, T control steps."""

    meta: EngineEpisodeMeta
    physics: np.ndarray  # (T, S) float64
    state: np.ndarray  # (T, 15) float32, core.observation.STATE_NAMES
    action: np.ndarray  # (T, 8) float32 executed command, core.observation.ACTION_NAMES
    expert_action: np.ndarray  # (T, 8) float32 what the scripted expert commands from that step
    learner_acting: np.ndarray  # (T,) bool
    time: np.ndarray  # (T,) float64 s of sim time at the step's start
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.time)

    # The attributes the dataset layer reads from any episode (recorded or generated).
    @property
    def episode_id(self) -> str:
        return self.meta.episode_id

    @property
    def skill(self) -> str:
        return self.meta.skill

    @property
    def arguments(self) -> tuple[str, ...]:
        return self.meta.arguments

    @property
    def success(self) -> bool:
        return self.meta.success

    @property
    def expert_takeover(self) -> np.ndarray:
        """(T,) bool: the steps the expert executed in a learner's DAgger rollout, its interventions.
        Demonstrations and whole tasks are the expert's throughout, evaluations the learner's: none."""
        if self.meta.source == "dagger":
            return ~self.learner_acting
        return np.zeros(len(self), bool)

    @property
    def metadata(self) -> EngineEpisodeMeta:
        """The metadata under the name recorded episodes use (``.arguments``, ``.outcome``)."""
        return self.meta

    def check(self) -> None:
        """Raise :class:`EpisodeFileError` unless the arrays agree with each other and the schema."""
        n = len(self.time)
        shapes = {
            "state": (n, STATE_DIM),
            "action": (n, ACTION_DIM),
            "expert_action": (n, ACTION_DIM),
            "learner_acting": (n,),
        }
        where = self.path or self.meta.episode_id
        for name, shape in shapes.items():
            got = getattr(self, name).shape
            if got != shape:
                raise EpisodeFileError(f"{where}: {name} has shape {got}, expected {shape}")
        if self.physics.ndim != 2 or len(self.physics) != n:
            raise EpisodeFileError(f"{where}: physics has shape {self.physics.shape} for {n} steps")
        finite = ("physics", "state", "action", "expert_action", "time")
        if not all(np.all(np.isfinite(getattr(self, name))) for name in finite):
            raise EpisodeFileError(f"{where}: non-finite values")


def episode_path(root: str | Path, meta: EngineEpisodeMeta) -> Path:
    return Path(root) / EPISODES_DIR / meta.skill / f"{meta.episode_id}.npz"


def write_episode(root: str | Path, episode: EngineEpisode) -> Path:
    """Store ``episode`` under ``root`` atomically; returns its path."""
    episode.check()
    path = episode_path(root, episode.meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, **asdict(episode.meta)}
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                physics=episode.physics.astype(np.float64),
                state=episode.state.astype(np.float32),
                action=episode.action.astype(np.float32),
                expert_action=episode.expert_action.astype(np.float32),
                learner_acting=episode.learner_acting.astype(bool),
                time=episode.time.astype(np.float64),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write episode {path}: {exc.strerror} (is the disk full?)") from exc
    episode.path = path
    return path


def read_episode(path: str | Path) -> EngineEpisode:
    """Load one episode file, or raise :class:`EpisodeFileError` saying what is wrong with it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("meta", *ARRAYS) if k not in data.files]
            if missing:
                raise EpisodeFileError(f"{path}: not an engine episode (no {', '.join(missing)})")
            raw = json.loads(bytes(data["meta"]).decode())
            arrays = {k: data[k] for k in ARRAYS}
    except FileNotFoundError:
        raise
    except EpisodeFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, UnicodeDecodeError) as exc:
        raise EpisodeFileError(f"{path}: corrupt episode file ({type(exc).__name__}: {exc})") from exc
    if raw.pop("format", None) != FORMAT:
        raise EpisodeFileError(f"{path}: format is not {FORMAT}")
    try:
        raw["arguments"] = tuple(raw["arguments"])
        meta = EngineEpisodeMeta(**raw)
    except TypeError as exc:
        raise EpisodeFileError(f"{path}: unreadable metadata ({exc})") from exc
    episode = EngineEpisode(meta, path=path, **arrays)
    episode.check()
    return episode


def episode_files(root: str | Path, skills: Sequence[str] | None = None) -> list[Path]:
    """Every episode file under ``root`` (optionally of some skills), sorted by path."""
    base = Path(root) / EPISODES_DIR
    if not base.is_dir():
        return []
    dirs = [base / s for s in skills] if skills else sorted(p for p in base.iterdir() if p.is_dir())
    return sorted(p for d in dirs if d.is_dir() for p in d.glob("*.npz") if not p.name.startswith("."))


def iter_episodes(root: str | Path, skills: Sequence[str] | None = None) -> Iterator[EngineEpisode]:
    for path in episode_files(root, skills):
        yield read_episode(path)


def is_engine_dataset(root: str | Path) -> bool:
    """Whether ``root`` holds engine episodes (rather than, or as well as, recorded rosbag episodes)."""
    return bool(episode_files(root))
