"""Camera observations for the engine: rendered live for a learner, or later from stored states.

Both paths go through :class:`CameraRig`: the sim bridge's renderer at its own camera size (what the
graph publishes), then the schema's :func:`~meta_robot.core.observation.prepare_image` down to the
model's size (what the policy server and the classifier node do with a received frame), so a frame
rendered from a stored state is the frame a learner saw live, byte for byte.

The render cache keeps, per model resolution, one memory-mappable ``.npy`` per episode of shape
(T, cameras, H, W, 3) uint8 under ``<root>/cache/render-<H>x<W>/``. It is built once per resolution
(in parallel workers) and reused; an episode file that changes gets a new cache entry.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from meta_robot.core.observation import CAMERAS, prepare_image
from meta_robot.engine.store import EngineEpisode, EpisodeFileError
from meta_robot.sim import snapshot
from meta_robot.sim.rendering import WorkcellRenderer
from meta_robot.sim.workcell import Workcell

CACHE_DIR = "cache"
RENDER_VERSION = 1  # bump when what a cached frame shows changes (renderer settings, camera placement)


class CameraRig:
    """The workcell's cameras as the models receive them."""

    def __init__(self, workcell: Workcell, image_size: tuple[int, int]) -> None:
        self.workcell = workcell
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.renderer = WorkcellRenderer(workcell)  # the sim bridge's defaults: size and robot meshes

    def images(self) -> dict[str, np.ndarray]:
        """Every camera of the schema now, at the model's size (the simulated arm leaves poses
        consistent with the joints after each step, as restoring a state does)."""
        return {c: prepare_image(self.renderer.render(c).color, self.image_size, c) for c in CAMERAS}

    def render_states(self, physics: np.ndarray) -> np.ndarray:
        """(T, cameras, H, W, 3) uint8 for stored physics states (T, S)."""
        m, d = self.workcell.model, self.workcell.data
        out = np.empty((len(physics), len(CAMERAS), *self.image_size, 3), np.uint8)
        for t, state in enumerate(physics):
            snapshot.restore(m, d, state)
            for c, image in enumerate(self.images().values()):
                out[t, c] = image
        return out

    def close(self) -> None:
        self.renderer.close()


def cache_dir(root: str | Path, image_size: tuple[int, int]) -> Path:
    return Path(root) / CACHE_DIR / f"render-{int(image_size[0])}x{int(image_size[1])}-v{RENDER_VERSION}"


def cache_path(root: str | Path, image_size: tuple[int, int], episode_file: Path) -> Path:
    """Where the frames of ``episode_file`` at ``image_size`` live; the name changes with the file."""
    st = os.stat(episode_file)
    digest = hashlib.sha1(f"{episode_file.name}-{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest()[:10]
    return cache_dir(root, image_size) / episode_file.parent.name / f"{episode_file.stem}.{digest}.npy"


def render_episode(rig: CameraRig, episode: EngineEpisode, out: Path) -> int:
    """Render ``episode`` into ``out`` atomically; returns the number of frames."""
    fingerprint = snapshot.model_fingerprint(rig.workcell.model)
    if episode.meta.model_fingerprint != fingerprint:
        raise EpisodeFileError(
            f"{episode.path}: recorded against another scene (model {episode.meta.model_fingerprint}, "
            f"this build's is {fingerprint}); collect it again"
        )
    frames = rig.render_states(episode.physics)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, frames)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write {out}: {exc.strerror} (is the disk full?)") from exc
    return len(frames)


def load_frames(path: Path, steps: int, image_size: tuple[int, int]) -> np.ndarray:
    """The cached (T, cameras, H, W, 3) frames of one episode, memory-mapped; checked against the
    episode's length and the resolution a model needs."""
    frames = np.load(path, mmap_mode="r")
    expected = (steps, len(CAMERAS), int(image_size[0]), int(image_size[1]), 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise EpisodeFileError(
            f"{path}: cached frames are {frames.dtype} {frames.shape}, a model at this resolution needs "
            f"uint8 {expected}; render the dataset at {tuple(image_size)} first"
        )
    return frames
