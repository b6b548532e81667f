"""Videos of engine episodes, rendered from their stored states at any size.

An episode keeps the simulator state of every control step, so a failure found by an evaluation or
a DAgger round can be watched afterwards at a resolution no model needs: the front and wrist
cameras side by side, with the step, time and outcome written on the frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from meta_robot.core.observation import CAMERAS
from meta_robot.engine.store import EngineEpisode, read_episode
from meta_robot.sim import snapshot
from meta_robot.sim.rendering import WorkcellRenderer
from meta_robot.sim.workcell import Workcell


def episode_video(episodes: Iterable[Path], out_dir: Path, size: int = 320) -> list[Path]:
    """One MP4 per episode file in ``out_dir`` (named after the episode), ``size`` pixels square per
    camera; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    workcell = Workcell()
    renderer = WorkcellRenderer(workcell, size, size)
    written = []
    try:
        for path in episodes:
            episode = read_episode(path)
            target = out_dir / f"{episode.episode_id}.mp4"
            _write(episode, workcell, renderer, target, size)
            written.append(target)
    finally:
        renderer.close()
    return written


def _write(
    episode: EngineEpisode, workcell: Workcell, renderer: WorkcellRenderer, target: Path, size: int
) -> None:
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    writer = cv2.VideoWriter(str(target), fourcc, float(episode.meta.fps), (size * len(CAMERAS), size))
    if not writer.isOpened():
        raise OSError(f"cannot write a video to {target}")
    workcell.reset(episode.meta.seed, episode.meta.scenario)
    label = (
        f"{' '.join((episode.skill, *episode.arguments))} seed {episode.meta.seed}: {episode.meta.outcome}"
    )
    try:
        for t, state in enumerate(episode.physics):
            snapshot.restore(workcell.model, workcell.data, state)
            frame = np.concatenate([renderer.render(c).color for c in CAMERAS], axis=1)
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            who = "learner" if episode.learner_acting[t] else "expert"
            text = f"{label} | step {t} ({episode.time[t] - episode.time[0]:.1f} s) {who}"
            cv2.putText(frame, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
            writer.write(frame)
    finally:
        writer.release()
