"""Recorded episodes -> per-step samples (front + wrist images, proprioception) labelled with the truth
value of every ground atom of the skill registry.

Labels come from the simulator's privileged state recorded beside the images (``/sim/object_states``,
``/ee_pose``, ``/gripper/state``), evaluated with the same :class:`~meta_robot.skills.world.Grounding`
that decides episode outcomes, so the classifier learns exactly the predicates the planner uses. Every
step of every episode is a sample, failed and intervened ones included: they hold the hard negatives.

Steps follow :func:`meta_robot.dataset.frames.resample_episode` (zero-order hold at ``fps``); a label
uses the latest privileged state at or before the step, like the images. Decoding an episode costs
seconds, so each one is cached as an ``.npz`` under ``<root>/.cache/predicates/`` (finished episodes
never change; the cache key covers the sampling, image size and the registry's atoms and geometry).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from meta_robot.core.observation import CAMERAS, IMAGE_SIZE, TCP_POSITION
from meta_robot.dataset.episodes import Episode, EpisodeError, deserialize, list_episodes, read_messages
from meta_robot.dataset.frames import resample_episode
from meta_robot.skills.registry import Registry, load_registry
from meta_robot.skills.world import DRAWER_JOINT, Grounding, WorldState

logger = logging.getLogger(__name__)

FORMAT = "meta_robot.predicate_samples/1"
CACHE_DIR = Path(".cache") / "predicates"
OBJECT_STATES_TOPIC = "/sim/object_states"
GRIPPER_TOPIC = "/gripper/state"
EE_POSE_TOPIC = "/ee_pose"
# Steps per second the classifier's samples are taken from an episode: its own rate, not the control
# rate at which the policy's dataset is stepped (core.observation.CONTROL_RATE).
CLASSIFIER_FPS = 5.0
DEFAULT_IMAGE_SIZE = IMAGE_SIZE


def atom_name(atom: Sequence[str]) -> str:
    """``("holding", "red_cube")`` -> ``"(holding red_cube)"`` (the registry's PDDL spelling)."""
    return "(" + " ".join(atom) + ")"


def registry_atoms(registry: Registry) -> tuple[str, ...]:
    """Every ground atom the registry can form, in registry order: the classifier's output heads.

    Taken from the registry rather than from the data so that a model always has the same heads for
    the same registry, even when some object never appears in the recordings.
    """
    names: list[str] = []
    for name, spec in registry.predicates.items():
        combos: list[tuple[str, ...]] = [()]
        for type_name in spec.parameter_types:
            combos = [c + (o,) for c in combos for o in registry.types[type_name]]
        names.extend(atom_name((name, *args)) for args in combos)
    return tuple(names)


@dataclass
class EpisodeSamples:
    """One episode's steps: images (N, H, W, 3) uint8, ``state`` (N, 15) float32 (the schema's
    STATE_NAMES), ``labels`` (N, A) bool and ``known`` (N, A) bool (False where an atom could not be
    evaluated, e.g. before the first privileged message or for an object absent from the scene)."""

    episode_id: str
    skill: str
    arguments: tuple[str, ...]
    success: bool | None
    atoms: tuple[str, ...]
    front: np.ndarray
    wrist: np.ndarray
    state: np.ndarray
    labels: np.ndarray
    known: np.ndarray
    intervention: np.ndarray
    timestamps_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.timestamps_ns)


@dataclass
class PredicateDataset:
    """All samples of a data root, per episode, with the atom order shared by every episode."""

    atoms: tuple[str, ...]
    episodes: list[EpisodeSamples]
    root: str | None = None
    fps: float = CLASSIFIER_FPS
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE

    def __len__(self) -> int:
        return sum(len(e) for e in self.episodes)

    @property
    def episode_ids(self) -> list[str]:
        return [e.episode_id for e in self.episodes]


@dataclass
class SampleArrays:
    """Samples of several episodes concatenated, ready for batching."""

    front: np.ndarray
    wrist: np.ndarray
    state: np.ndarray
    labels: np.ndarray
    known: np.ndarray
    episode: np.ndarray  # index into the episode list each sample came from

    def __len__(self) -> int:
        return len(self.state)


def concatenate(episodes: Sequence[EpisodeSamples], atoms: Sequence[str]) -> SampleArrays:
    """Stack the samples of ``episodes`` (their atoms must be ``atoms``, in order)."""
    for e in episodes:
        if tuple(e.atoms) != tuple(atoms):
            raise ValueError(f"episode {e.episode_id} has atoms {e.atoms}, expected {tuple(atoms)}")
    if not episodes:
        raise ValueError("no episodes to concatenate")
    return SampleArrays(
        front=np.concatenate([e.front for e in episodes]),
        wrist=np.concatenate([e.wrist for e in episodes]),
        state=np.concatenate([e.state for e in episodes]).astype(np.float32),
        labels=np.concatenate([e.labels for e in episodes]).astype(bool),
        known=np.concatenate([e.known for e in episodes]).astype(bool),
        episode=np.concatenate([np.full(len(e), i, dtype=np.int64) for i, e in enumerate(episodes)]),
    )


class _Latest:
    """ "Latest message at or before t" lookups on one topic."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.values: list = []

    def at(self, times: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.times, dtype=np.int64), times, side="right") - 1


def label_steps(
    episode: Episode,
    timestamps_ns: np.ndarray,
    tcp_positions: np.ndarray,
    grounding: Grounding,
    atoms: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Truth value of every atom at each step, from the privileged state recorded in ``episode``.

    ``tcp_positions`` (N, 3) is the hand position at each step (from the resampled ``/ee_pose``).
    Returns ``labels`` and ``known`` (N, A) bool. Raises :class:`EpisodeError` if the episode has no
    privileged state (a real-robot recording cannot be labelled this way).
    """
    streams = {OBJECT_STATES_TOPIC: _Latest(), GRIPPER_TOPIC: _Latest()}
    msgtypes = {
        OBJECT_STATES_TOPIC: "meta_robot_interfaces/msg/ObjectStates",
        GRIPPER_TOPIC: "meta_robot_interfaces/msg/GripperState",
    }
    for topic, t, raw in read_messages(episode, list(streams), raw=True):
        streams[topic].times.append(t)
        streams[topic].values.append(deserialize(raw, msgtypes[topic]))
    missing = [topic for topic, s in streams.items() if not s.times]
    if missing:
        raise EpisodeError(
            f"episode {episode.path}: no messages on {', '.join(missing)} (no privileged state to label)"
        )
    index = {atom: i for i, atom in enumerate(atoms)}
    labels = np.zeros((len(timestamps_ns), len(atoms)), dtype=bool)
    known = np.zeros_like(labels)
    at_objects = streams[OBJECT_STATES_TOPIC].at(timestamps_ns)
    at_gripper = streams[GRIPPER_TOPIC].at(timestamps_ns)
    for step, (i_obj, i_grip) in enumerate(zip(at_objects, at_gripper, strict=True)):
        if i_obj < 0 or i_grip < 0:
            continue
        objects_msg = streams[OBJECT_STATES_TOPIC].values[i_obj]
        gripper = streams[GRIPPER_TOPIC].values[i_grip]
        positions = {
            o.name: np.array([o.pose.position.x, o.pose.position.y, o.pose.position.z])
            for o in objects_msg.objects
        }
        joints = dict(zip(objects_msg.joint_names, np.asarray(objects_msg.joint_positions), strict=False))
        world = WorldState(
            objects=positions,
            drawer_opening=float(joints.get(DRAWER_JOINT, 0.0)),
            tcp_position=np.asarray(tcp_positions[step], dtype=float),
            gripper_width=float(gripper.width),
            gripper_grasped=bool(gripper.grasped),
        )
        for atom, value in grounding.atoms(world).items():
            column = index.get(atom_name(atom))
            if column is not None:
                labels[step, column] = value
                known[step, column] = True
    return labels, known


def episode_samples(
    episode: Episode,
    grounding: Grounding,
    atoms: Sequence[str],
    fps: float = CLASSIFIER_FPS,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
) -> EpisodeSamples:
    """Decode and label one episode (no cache)."""
    frames = resample_episode(episode, fps=fps, image_size=tuple(image_size))
    labels, known = label_steps(
        episode, frames.timestamps_ns, frames.state[:, TCP_POSITION], grounding, atoms
    )
    n = len(frames)
    shape = (0, *tuple(image_size), 3)
    return EpisodeSamples(
        episode_id=episode.episode_id,
        skill=episode.skill,
        arguments=tuple(episode.metadata.arguments),
        success=episode.success,
        atoms=tuple(atoms),
        front=frames.images.get(CAMERAS[0], np.zeros(shape, np.uint8)) if n else np.zeros(shape, np.uint8),
        wrist=frames.images.get(CAMERAS[1], np.zeros(shape, np.uint8)) if n else np.zeros(shape, np.uint8),
        state=frames.state.astype(np.float32),
        labels=labels,
        known=known,
        intervention=frames.intervention.astype(bool),
        timestamps_ns=frames.timestamps_ns.astype(np.int64),
    )


def cache_key(registry: Registry, atoms: Sequence[str], fps: float, image_size: tuple[int, int]) -> str:
    """Changes whenever anything that shapes a cached sample changes."""
    blob = json.dumps(
        {
            "format": FORMAT,
            "fps": float(fps),
            "image_size": list(image_size),
            "atoms": list(atoms),
            "geometry": registry.geometry,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _save_npz(path: Path, samples: EpisodeSamples) -> None:
    """Write atomically (temp file + rename) so a killed run never leaves a half-written cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "episode_id": samples.episode_id,
        "skill": samples.skill,
        "arguments": list(samples.arguments),
        "success": samples.success,
        "atoms": list(samples.atoms),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; the cache is shared like the episodes beside it
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                front=samples.front,
                wrist=samples.wrist,
                state=samples.state,
                labels=samples.labels,
                known=samples.known,
                intervention=samples.intervention,
                timestamps_ns=samples.timestamps_ns,
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_npz(path: Path) -> EpisodeSamples:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown format {meta.get('format')!r}")
        return EpisodeSamples(
            episode_id=meta["episode_id"],
            skill=meta["skill"],
            arguments=tuple(meta["arguments"]),
            success=meta["success"],
            atoms=tuple(meta["atoms"]),
            front=data["front"],
            wrist=data["wrist"],
            state=data["state"],
            labels=data["labels"],
            known=data["known"],
            intervention=data["intervention"],
            timestamps_ns=data["timestamps_ns"],
        )


def load_dataset(
    root: str | Path,
    fps: float = CLASSIFIER_FPS,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    skills: Iterable[str] | None = None,
    registry: Registry | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> PredicateDataset:
    """Samples of every finished episode under ``root`` (optionally only ``skills``).

    Cached per episode under ``cache_dir`` (default ``<root>/.cache/predicates``); an unreadable cache
    entry is rebuilt, an unwritable cache directory only costs a warning. Episodes without privileged
    state are skipped with a warning; raises :class:`EpisodeError` if nothing usable is left.
    """
    root = Path(root)
    registry = registry or load_registry()
    grounding = Grounding(registry)
    atoms = registry_atoms(registry)
    key = cache_key(registry, atoms, fps, image_size)
    cache = Path(cache_dir) if cache_dir is not None else root / CACHE_DIR
    episodes = list_episodes(root, skills=skills)
    samples: list[EpisodeSamples] = []
    for episode in tqdm(episodes, desc="episodes", unit="ep", disable=not progress, leave=False):
        path = cache / f"{episode.episode_id}.{key}.npz"
        item: EpisodeSamples | None = None
        if use_cache and path.is_file():
            try:
                item = _load_npz(path)
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("rebuilding cache entry %s: %s", path, exc)
        if item is None:
            try:
                item = episode_samples(episode, grounding, atoms, fps, image_size)
            except EpisodeError as exc:
                logger.warning("skipping %s", exc)
                continue
            if use_cache:
                try:
                    _save_npz(path, item)
                except OSError as exc:
                    logger.warning("cannot cache %s: %s", path, exc)
        if len(item):
            samples.append(item)
    if not samples:
        raise EpisodeError(f"dataset root {root}: no episode with labelled steps")
    return PredicateDataset(atoms, samples, str(root), float(fps), tuple(image_size))
