"""Engine episodes as success-classifier data: rendered frames labelled with every ground atom.

The labels come from the stored simulator states: each sampled step is restored, read as the world
state the graph's referee would see, and judged by the registry's
:class:`~meta_robot.skills.world.Grounding`, exactly as recorded episodes are labelled from their
``/sim/object_states``. Every kind of episode is a source: demonstrations (failed ones included),
whole-task episodes (several objects in one container, a closed drawer with objects inside) and a
learner's DAgger rollouts (the near misses a classifier must not call a success).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from meta_robot.core.observation import IMAGE_SIZE
from meta_robot.engine.dataset import render_dataset
from meta_robot.engine.render import cache_path, load_frames
from meta_robot.engine.store import EpisodeFileError, episode_files, read_episode
from meta_robot.learning.predicate_data import (
    CLASSIFIER_FPS,
    EpisodeSamples,
    PredicateDataset,
    atom_name,
    registry_atoms,
)
from meta_robot.sim import snapshot
from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell
from meta_robot.skills.registry import Registry, load_registry
from meta_robot.skills.rollout import world_state
from meta_robot.skills.world import Grounding


def engine_predicate_dataset(
    root: str | Path,
    image_size: tuple[int, int] = IMAGE_SIZE,
    registry: Registry | None = None,
    fps: float = CLASSIFIER_FPS,
    workers: int | None = None,
    progress: bool = True,
) -> PredicateDataset:
    """Every engine episode under ``root``, sampled at ``fps``, with its atom labels."""
    registry = registry or load_registry()
    report = render_dataset(root, image_size, workers, progress)
    if report.errors:
        raise EpisodeFileError(
            f"{len(report.errors)} episodes could not be rendered; first: {report.errors[0]}"
        )
    atoms = registry_atoms(registry)
    column = {name: j for j, name in enumerate(atoms)}
    grounding = Grounding(registry)
    workcell = Workcell()
    arm = SimArm(workcell)
    fingerprint = snapshot.model_fingerprint(workcell.model)
    episodes = []
    for path in tqdm(episode_files(root), desc="label atoms", unit="ep", disable=not progress):
        episode = read_episode(path)
        if episode.meta.model_fingerprint != fingerprint:
            raise EpisodeFileError(f"{path}: recorded against another scene; collect it again")
        if len(episode) == 0:
            continue
        stride = max(1, round(episode.meta.fps / fps))
        steps = np.arange(0, len(episode), stride)
        frames = load_frames(cache_path(root, image_size, path), len(episode), image_size)
        workcell.reset(episode.meta.seed, episode.meta.scenario)  # the scenario's objects
        labels = np.zeros((len(steps), len(atoms)), bool)
        known = np.zeros((len(steps), len(atoms)), bool)
        for row, t in enumerate(steps):
            snapshot.restore(workcell.model, workcell.data, episode.physics[t])
            arm.after_restore()
            for atom, value in grounding.atoms(world_state(workcell, arm)).items():
                j = column.get(atom_name(atom))
                if j is not None:
                    labels[row, j], known[row, j] = value, True
        episodes.append(
            EpisodeSamples(
                episode_id=episode.episode_id,
                skill=episode.skill,
                arguments=tuple(episode.arguments),
                success=episode.meta.success,
                atoms=atoms,
                front=np.ascontiguousarray(frames[steps, 0]),
                wrist=np.ascontiguousarray(frames[steps, 1]),
                state=episode.state[steps],
                labels=labels,
                known=known,
                intervention=np.zeros(len(steps), bool),
                timestamps_ns=np.round(episode.time[steps] * 1e9).astype(np.int64),
            )
        )
    return PredicateDataset(atoms, episodes, root=None, fps=fps, image_size=tuple(image_size))
