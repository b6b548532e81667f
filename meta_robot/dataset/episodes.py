"""Find and read finished episodes (the recorder's rosbag2/MCAP folders plus ``episode.yaml``).

Only finished episodes count: a folder directly under the root that holds ``episode.yaml``. The one
being recorded (and whatever a crash left) lives under ``<root>/.open/`` and is never listed, so a
dataset read while the recorder runs sees each episode whole or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError

from meta_robot.recording.episode import EPISODE_FILE, OPEN_DIR, EpisodeMetadata
from meta_robot.recording.typestore import typestore

logger = logging.getLogger(__name__)


class EpisodeError(RuntimeError):
    """An episode folder is missing, incomplete or unreadable; the message names the folder."""


@dataclass(frozen=True)
class Episode:
    """One finished episode: its folder and its ``episode.yaml``."""

    path: Path
    metadata: EpisodeMetadata

    @property
    def episode_id(self) -> str:
        return self.metadata.episode_id

    @property
    def skill(self) -> str:
        """The skill name; teleoperated episodes without one are called ``teleop``."""
        return self.metadata.skill or "teleop"

    @property
    def success(self) -> bool | None:
        """True / False for a labelled outcome, None when it is ``unknown``."""
        return {"success": True, "failure": False}.get(self.metadata.outcome)


def load_episode(path: str | Path) -> Episode:
    """Read one episode folder, raising :class:`EpisodeError` with the reason if it is not usable."""
    folder = Path(path)
    if not folder.is_dir():
        raise EpisodeError(f"episode {folder}: no such folder")
    meta_file = folder / EPISODE_FILE
    if not meta_file.is_file():
        raise EpisodeError(f"episode {folder}: no {EPISODE_FILE} (not a finished episode)")
    try:
        data = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        metadata = EpisodeMetadata.from_dict(data)
    except (yaml.YAMLError, ValueError, TypeError, KeyError) as exc:
        raise EpisodeError(f"episode {folder}: corrupt {EPISODE_FILE}: {exc}") from exc
    if not (folder / "metadata.yaml").is_file():
        raise EpisodeError(f"episode {folder}: no rosbag2 metadata.yaml (recording not closed?)")
    return Episode(folder, metadata)


def list_episodes(
    root: str | Path, skills: Iterable[str] | None = None, strict: bool = False
) -> list[Episode]:
    """Finished episodes under ``root``, oldest first (episode ids start with a timestamp).

    ``skills`` keeps only those skills. A folder that looks like an episode but cannot be read is
    skipped with a warning, or raises :class:`EpisodeError` when ``strict``.
    """
    root = Path(root)
    if not root.is_dir():
        raise EpisodeError(f"dataset root {root}: no such folder")
    wanted = set(skills) if skills is not None else None
    episodes = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != OPEN_DIR):
        if not (folder / EPISODE_FILE).is_file():
            continue
        try:
            episode = load_episode(folder)
        except EpisodeError as exc:
            if strict:
                raise
            logger.warning("skipping %s", exc)
            continue
        if wanted is None or episode.skill in wanted:
            episodes.append(episode)
    return episodes


def read_messages(
    episode: Episode | str | Path, topics: Iterable[str] | None = None, raw: bool = False
) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(topic, timestamp_ns, message)`` in recording order for ``topics`` (all if None).

    ``timestamp_ns`` is the time the recorder received the message (ROS time). With ``raw`` the
    message is left as CDR bytes, for callers that deserialize only what they keep (images).
    Raises :class:`EpisodeError` if the bag is missing or corrupt.
    """
    if not isinstance(episode, Episode):
        episode = load_episode(episode)
    try:
        with AnyReader([episode.path], default_typestore=typestore()) as reader:
            wanted = set(topics) if topics is not None else None
            connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
            if not connections:  # rosbags reads every connection when given none
                return
            for connection, timestamp, rawdata in reader.messages(connections=connections):
                message = rawdata if raw else reader.deserialize(rawdata, connection.msgtype)
                yield connection.topic, timestamp, message
    except (AnyReaderError, ReaderError, OSError, ValueError, KeyError) as exc:
        raise EpisodeError(f"episode {episode.path}: cannot read the recording: {exc}") from exc


def deserialize(rawdata: bytes, msgtype: str) -> Any:
    """Deserialize CDR bytes (from ``read_messages(raw=True)``) with the project's type store."""
    return typestore().deserialize_cdr(rawdata, msgtype)


def topic_types(episode: Episode) -> dict[str, str]:
    """Topic -> message type as recorded in the bag (rosbag2's metadata.yaml)."""
    try:
        with AnyReader([episode.path], default_typestore=typestore()) as reader:
            return {c.topic: c.msgtype for c in reader.connections}
    except (AnyReaderError, ReaderError, OSError, ValueError) as exc:
        raise EpisodeError(f"episode {episode.path}: cannot read the recording: {exc}") from exc
