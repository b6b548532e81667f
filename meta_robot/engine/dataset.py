"""Engine episodes as training data: the same arrays the recorded-episode dataset gives.

:class:`EngineDataset` has the interface the trainers use from
:class:`~meta_robot.dataset.torch_dataset.EpisodeDataset` (``episodes``, ``skills``,
``argument_vocabulary``, ``max_arguments``, ``image_size``, ``fps``, ``arrays()``,
``episode_steps()``), so a policy or classifier trains on generated and recorded episodes alike.
Its images come from the render cache (:mod:`meta_robot.engine.render`), built here when missing.

The action of a step is the scripted expert's: in a demonstration what it commanded, in a learner's
rollout its relabel (DAgger). Demonstrations that failed are left out of policy training (their
actions led nowhere); a learner's rollouts are kept whatever their outcome, since their labels are
the corrections the learner needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from meta_robot.core.observation import ACTION_DIM, CAMERAS, CONTROL_RATE, IMAGE_SIZE, STATE_DIM
from meta_robot.dataset.step_arrays import StepArrays
from meta_robot.engine.privileged import privileged_names, privileged_state
from meta_robot.engine.render import cache_path, load_frames
from meta_robot.engine.store import EngineEpisode, EpisodeFileError, episode_files, read_episode
from meta_robot.engine.workers import WorkerPool, default_workers
from meta_robot.sim.workcell import build_model

if TYPE_CHECKING:
    from meta_robot.dataset.frames import EpisodeFrames

logger = logging.getLogger(__name__)
PAD_ARGUMENT = "<none>"

EpisodeFilter = Callable[[EngineEpisode], bool]


def for_policy(episode: EngineEpisode) -> bool:
    """Successful single-skill demonstrations and every learner rollout (see the module docstring);
    whole-task episodes are the classifier's."""
    return episode.meta.source == "dagger" or (episode.meta.source == "expert" and episode.meta.success)


@dataclass
class RenderReport:
    rendered: int = 0
    frames: int = 0
    cached: int = 0
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds else 0.0

    def summary(self) -> str:
        return (
            f"rendered {self.rendered} episodes ({self.frames} steps x {len(CAMERAS)} cameras) in "
            f"{self.wall_seconds:.0f} s = {self.frames_per_second:.0f} steps/s; {self.cached} already "
            f"cached; {len(self.errors)} failed"
        )


def _init_renderer(image_size: tuple[int, int]) -> Any:
    from meta_robot.engine.render import CameraRig
    from meta_robot.sim.workcell import Workcell

    return CameraRig(Workcell(), image_size)


def _render_job(rig: Any, job: tuple[str, str]) -> int:
    from meta_robot.engine.render import render_episode

    path, out = job
    return render_episode(rig, read_episode(path), Path(out))


def render_dataset(
    root: str | Path,
    image_size: tuple[int, int] = IMAGE_SIZE,
    workers: int | None = None,
    progress: bool = True,
    skills: Sequence[str] | None = None,
) -> RenderReport:
    """Render every episode under ``root`` that has no cache entry at ``image_size`` yet."""
    from tqdm import tqdm

    report = RenderReport()
    files = episode_files(root, skills)
    todo = []
    for path in files:
        out = cache_path(root, image_size, path)
        if out.is_file():
            report.cached += 1
        else:
            todo.append((str(path), str(out)))
    started = time.perf_counter()
    if todo:
        n = min(workers or default_workers(), len(todo))
        with (
            WorkerPool(n, _init_renderer, tuple(image_size), _render_job) as pool,
            tqdm(
                total=len(todo),
                desc=f"render {image_size[0]}x{image_size[1]}",
                unit="ep",
                disable=not progress,
            ) as bar,
        ):
            for result in pool.map(todo):
                bar.update(1)
                if result.ok:
                    report.rendered += 1
                    report.frames += int(result.value)
                else:
                    report.errors.append(f"{result.job[0]}: {result.error}")
                    logger.error("render failed: %s", report.errors[-1])
    report.wall_seconds = time.perf_counter() - started
    return report


class EngineDataset(StepArrays):
    """Steps of the engine episodes under ``root`` that ``keep`` accepts, with their rendered frames."""

    def __init__(
        self,
        root: str | Path,
        skills: Iterable[str] | None = None,
        image_size: tuple[int, int] = IMAGE_SIZE,
        keep: EpisodeFilter = for_policy,
        render_workers: int | None = None,
        progress: bool = True,
    ) -> None:
        self.root = Path(root)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.fps = CONTROL_RATE
        skills = list(skills) if skills is not None else None
        self.render_report = render_dataset(root, self.image_size, render_workers, progress, skills)
        if self.render_report.errors:
            raise EpisodeFileError(
                f"{len(self.render_report.errors)} episodes could not be rendered; first: "
                f"{self.render_report.errors[0]}"
            )
        self.episodes: list[EngineEpisode] = []
        frames, state, action, learner, scene = [], [], [], [], []
        model = build_model()
        for path in episode_files(root, skills):
            episode = read_episode(path)
            if not keep(episode) or len(episode) == 0:
                continue
            if episode.meta.fps != self.fps:
                raise EpisodeFileError(
                    f"{path}: recorded at {episode.meta.fps} Hz, the schema's rate is {self.fps}"
                )
            frames.append(load_frames(cache_path(root, self.image_size, path), len(episode), self.image_size))
            state.append(episode.state)
            action.append(episode.expert_action)
            learner.append(episode.learner_acting)
            scene.append(privileged_state(model, episode.physics))
            self.episodes.append(episode)
        self.skills = sorted({e.skill for e in self.episodes})
        self.argument_vocabulary = [PAD_ARGUMENT, *sorted({a for e in self.episodes for a in e.arguments})]
        self.max_arguments = max((len(e.arguments) for e in self.episodes), default=0)
        lengths = [len(e) for e in self.episodes]
        self.episode_starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        h, w = self.image_size
        images = np.concatenate(frames) if frames else np.zeros((0, len(CAMERAS), h, w, 3), np.uint8)
        self._arrays = {
            **{cam: np.ascontiguousarray(images[:, c]) for c, cam in enumerate(CAMERAS)},
            "proprio": np.concatenate(state) if state else np.zeros((0, STATE_DIM), np.float32),
            "action": np.concatenate(action) if action else np.zeros((0, ACTION_DIM), np.float32),
            "intervention": np.zeros(len(images), bool),
            "learner_acting": np.concatenate(learner) if learner else np.zeros(0, bool),
            # The true scene per step (object poses, drawer): an auxiliary target for image features.
            "privileged": np.concatenate(scene)
            if scene
            else np.zeros((0, len(privileged_names(model))), np.float32),
        }
        for episode in self.episodes:  # the per-step physics is not needed once loaded
            episode.physics = episode.physics[:0]

    def summary(self) -> dict[str, Any]:
        """Episodes and steps per skill and source: the data summary a manifest records."""
        out: dict[str, Any] = {}
        for e in self.episodes:
            entry = out.setdefault(e.skill, {"episodes": 0, "steps": 0, "sources": {}, "seeds": []})
            entry["episodes"] += 1
            entry["steps"] += len(e)
            entry["sources"][e.meta.source] = entry["sources"].get(e.meta.source, 0) + 1
            entry["seeds"].append(e.meta.seed)
        for entry in out.values():
            seeds = entry.pop("seeds")
            entry["seeds"] = [min(seeds), max(seeds)]
        return out


def engine_frames(
    root: str | Path,
    fps: float,
    image_size: tuple[int, int] | None,
    skills: Iterable[str] | None = None,
    only_successful: bool = False,
    progress: bool = True,
) -> tuple[list[EngineEpisode], Callable[[EngineEpisode], EpisodeFrames]]:
    """Engine episodes under ``root`` and a function giving each one's resampled frames (the form a
    recorded episode takes for export), images from the render cache at ``image_size``."""
    from meta_robot.dataset.frames import EpisodeFrames

    if fps != CONTROL_RATE:
        raise ValueError(f"engine episodes are stored at the control rate, {CONTROL_RATE:g} Hz, not {fps:g}")
    size = tuple(image_size or IMAGE_SIZE)
    skills = list(skills) if skills is not None else None
    report = render_dataset(root, size, progress=progress, skills=skills)
    if report.errors:
        raise EpisodeFileError(
            f"{len(report.errors)} episodes could not be rendered; first: {report.errors[0]}"
        )
    episodes = [
        e for e in (read_episode(p) for p in episode_files(root, skills)) if not only_successful or e.success
    ]

    def frames_of(episode: EngineEpisode) -> EpisodeFrames:
        if episode.path is None:
            raise ValueError(f"episode {episode.episode_id} was not read from a file")
        frames = load_frames(cache_path(root, size, episode.path), len(episode), size)
        return EpisodeFrames(
            episode=episode,
            fps=episode.meta.fps,
            timestamps_ns=np.round(episode.time * 1e9).astype(np.int64),
            images={cam: np.ascontiguousarray(frames[:, c]) for c, cam in enumerate(CAMERAS)},
            state=episode.state,
            action=episode.action,
            intervention=episode.expert_takeover,
            skill=episode.skill,
            arguments=list(episode.arguments),
            success=episode.success,
        )

    return episodes, frames_of
