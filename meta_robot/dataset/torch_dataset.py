"""A torch Dataset over the resampled steps of every finished episode under a root.

Decoding bags is the slow part, so each episode is resampled once and kept in memory; with a cache
folder (by default ``<root>/.cache/frames``, which ``list_episodes`` ignores) the decoded arrays are
also saved as ``.npz`` and reused by later runs. A cache file is keyed by episode id, fps and image
size, and rebuilt when the episode's ``episode.yaml`` changes (e.g. a relabelled outcome).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from meta_robot.dataset.episodes import Episode, list_episodes
from meta_robot.dataset.frames import ACTION_NAMES, CAMERAS, DEFAULT_FPS, STATE_NAMES, resample_episode
from meta_robot.recording.episode import EPISODE_FILE

logger = logging.getLogger(__name__)
CACHE_VERSION = 1
PAD_ARGUMENT = "<none>"  # argument index 0: pads episodes with fewer arguments than the longest


class EpisodeDataset(Dataset):
    """Steps of all episodes (optionally only some skills / only successful ones).

    An item is a dict of tensors: ``front`` and ``wrist`` (3, H, W) images (float in [0, 1], or uint8
    with ``uint8_images``), ``proprio`` (15,) float32 (see :data:`STATE_NAMES`), ``action`` (8,)
    float32 (see :data:`ACTION_NAMES`), ``intervention`` bool, ``skill`` long (index into
    :attr:`skills`), ``arguments`` (max_arguments,) long (indices into :attr:`argument_vocabulary`,
    0 = none), ``success`` long (1 success, 0 failure, -1 unknown), ``episode`` long (index into
    :attr:`episodes`), ``step`` long.
    """

    state_names = STATE_NAMES
    action_names = ACTION_NAMES

    def __init__(
        self,
        root: str | Path,
        skills: Iterable[str] | None = None,
        image_size: tuple[int, int] = (128, 128),
        fps: float = DEFAULT_FPS,
        only_successful: bool = False,
        uint8_images: bool = False,
        cache_dir: str | Path | None = "default",
    ) -> None:
        self.root = Path(root)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.fps = float(fps)
        self.uint8_images = uint8_images
        if cache_dir == "default":
            cache_dir = self.root / ".cache" / "frames"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        candidates = [
            e
            for e in list_episodes(self.root, skills)
            if not only_successful or e.metadata.outcome == "success"
        ]
        self.episodes: list[Episode] = []
        arrays: list[dict[str, np.ndarray]] = []
        for episode in candidates:
            data = self._load(episode)
            if len(data["action"]) == 0:
                logger.warning("episode %s has no complete step at %g Hz; left out", episode.episode_id, fps)
                continue
            self.episodes.append(episode)
            arrays.append(data)

        self.skills: list[str] = sorted({e.skill for e in self.episodes})
        self.argument_vocabulary: list[str] = [PAD_ARGUMENT] + sorted(
            {a for e in self.episodes for a in e.metadata.arguments}
        )
        self.max_arguments = max((len(e.metadata.arguments) for e in self.episodes), default=0)
        lengths = [len(a["action"]) for a in arrays]
        self.episode_starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._step_episode = np.repeat(np.arange(len(lengths)), lengths)
        cat = (lambda key: np.concatenate([a[key] for a in arrays])) if arrays else None
        empty_image = np.zeros((0, *self.image_size, 3), np.uint8)
        self._images = {name: cat(name) if cat else empty_image for name in CAMERAS}
        self._proprio = cat("state") if cat else np.zeros((0, len(STATE_NAMES)), np.float32)
        self._action = cat("action") if cat else np.zeros((0, len(ACTION_NAMES)), np.float32)
        self._intervention = cat("intervention") if cat else np.zeros(0, bool)
        self._skill = np.array([self.skills.index(e.skill) for e in self.episodes], dtype=np.int64)
        self._arguments = np.zeros((len(self.episodes), self.max_arguments), dtype=np.int64)
        for i, e in enumerate(self.episodes):
            for j, argument in enumerate(e.metadata.arguments):
                self._arguments[i, j] = self.argument_vocabulary.index(argument)
        self._success = np.array(
            [{True: 1, False: 0, None: -1}[e.success] for e in self.episodes], dtype=np.int64
        )

    # -- cache ------------------------------------------------------------------------------------
    def _cache_path(self, episode: Episode) -> Path | None:
        if self.cache_dir is None:
            return None
        stamp = os.stat(episode.path / EPISODE_FILE).st_mtime_ns
        key = f"{CACHE_VERSION}-{self.fps:g}-{self.image_size}-{stamp}"
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        return self.cache_dir / f"{episode.episode_id}-{digest}.npz"

    def _load(self, episode: Episode) -> dict[str, np.ndarray]:
        path = self._cache_path(episode)
        if path is not None and path.is_file():
            with np.load(path) as data:
                return {key: data[key] for key in data.files}
        frames = resample_episode(episode, fps=self.fps, image_size=self.image_size)
        empty = np.zeros((0, *self.image_size, 3), np.uint8)
        data = {
            **{name: frames.images.get(name, empty) if len(frames) else empty for name in CAMERAS},
            "state": frames.state,
            "action": frames.action,
            "intervention": frames.intervention,
        }
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **data)
            os.replace(tmp, path)  # a reader never sees half a cache file
        return data

    # -- Dataset ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._action)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"step {index} out of range for {len(self)} steps")
        index = index % len(self)
        e = int(self._step_episode[index])
        item: dict[str, torch.Tensor] = {}
        for name in CAMERAS:
            image = torch.from_numpy(np.ascontiguousarray(self._images[name][index].transpose(2, 0, 1)))
            item[name] = image if self.uint8_images else image.float() / 255.0
        item["proprio"] = torch.from_numpy(self._proprio[index].copy())
        item["action"] = torch.from_numpy(self._action[index].copy())
        item["intervention"] = torch.tensor(bool(self._intervention[index]))
        item["skill"] = torch.tensor(self._skill[e])
        item["arguments"] = torch.from_numpy(self._arguments[e].copy())
        item["success"] = torch.tensor(self._success[e])
        item["episode"] = torch.tensor(e, dtype=torch.long)
        item["step"] = torch.tensor(index - int(self.episode_starts[e]), dtype=torch.long)
        return item

    def arrays(self) -> dict[str, np.ndarray]:
        """Every step's arrays at once (images uint8 (N, H, W, 3) by camera, ``proprio``, ``action``,
        ``intervention``), for trainers that batch faster than item by item. Do not modify them."""
        return {
            **self._images,
            "proprio": self._proprio,
            "action": self._action,
            "intervention": self._intervention,
        }

    def episode_steps(self, episode: int) -> range:
        """Dataset indices of one episode's steps, in order."""
        return range(int(self.episode_starts[episode]), int(self.episode_starts[episode + 1]))
