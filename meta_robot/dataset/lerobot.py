"""Export finished episodes as a LeRobot dataset in the **v3.0** layout (what lerobot 0.4.x loads).

Layout written (the documented v3.0 structure, see huggingface/lerobot ``datasets/utils.py``)::

    meta/info.json                               schema, fps, counts, path templates
    meta/stats.json                              min/max/mean/std/count (+ quantiles) per feature
    meta/tasks.parquet                           task sentence (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet     one row per episode: length, data file, index range, stats
    data/chunk-XXX/file-YYY.parquet              one row per frame, many episodes per file

Images are stored **in the parquet files** (feature dtype ``image``: a struct of PNG ``bytes`` and
``path``, as Hugging Face ``datasets`` writes an ``Image`` feature) rather than as mp4 videos: PNG is
lossless, needs no ffmpeg/torchcodec on the machine that exports or trains, and the exported folder is
self-contained; our cameras are small (128x128 in sim), so the size cost of skipping video
compression is modest. ``video_path`` is therefore null.

lerobot itself cannot be installed next to this project's torch, so :func:`validate_lerobot_dataset`
checks an export against that documented format the way lerobot's loader reads it. It validates the
format, not lerobot's loader itself.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from meta_robot.dataset.episodes import Episode, list_episodes
from meta_robot.dataset.frames import (
    ACTION_NAMES,
    CAMERAS,
    DEFAULT_FPS,
    STATE_NAMES,
    EpisodeFrames,
    resample_episode,
)

logger = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
ROBOT_TYPE = "franka"
CHUNKS_SIZE = 1000  # files per chunk folder (lerobot's DEFAULT_CHUNK_SIZE)
DATA_FILES_SIZE_IN_MB = 100  # a data file is closed once it reaches this size (DEFAULT_DATA_FILE_SIZE_IN_MB)
VIDEO_FILES_SIZE_IN_MB = 500  # DEFAULT_VIDEO_FILE_SIZE_IN_MB (no videos are written)
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
BASE_STATS = ("min", "max", "mean", "std", "count")
IMAGE_KEYS = {name: f"observation.images.{name}" for name in CAMERAS}
INDEX_FEATURES = (
    "timestamp",
    "frame_index",
    "episode_index",
    "index",
    "task_index",
)  # lerobot's DEFAULT_FEATURES
STATS_SAMPLE_IMAGES = 100  # images per episode used for image statistics (lerobot samples likewise)


class LeRobotFormatError(ValueError):
    """An exported folder does not follow the LeRobot v3.0 format; the message lists every problem."""


@dataclass
class ExportResult:
    """Where the dataset went and what it holds."""

    path: Path
    episodes: int
    frames: int
    tasks: list[str]
    skipped: list[str]  # episode ids left out (no step with every stream available)


def task_string(episode: Episode) -> str:
    """The task sentence of an episode: its skill and arguments ("pick red_cube"), else its task."""
    meta = episode.metadata
    if meta.skill:
        return " ".join([meta.skill, *meta.arguments])
    return meta.task or "teleop"


def build_features(image_shape: tuple[int, int, int]) -> dict[str, dict[str, Any]]:
    """The ``features`` block of info.json (dtype, shape, names) for images of ``image_shape`` (HWC)."""
    features: dict[str, dict[str, Any]] = {
        key: {"dtype": "image", "shape": list(image_shape), "names": ["height", "width", "channels"]}
        for key in IMAGE_KEYS.values()
    }
    features["observation.state"] = {
        "dtype": "float32",
        "shape": [len(STATE_NAMES)],
        "names": list(STATE_NAMES),
    }
    features["action"] = {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": list(ACTION_NAMES)}
    features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    features["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    features["complementary_info.is_intervention"] = {"dtype": "float32", "shape": [1], "names": None}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for key in ("frame_index", "episode_index", "index", "task_index"):
        features[key] = {"dtype": "int64", "shape": [1], "names": None}
    return features


def _arrow_type(feature: dict[str, Any]) -> pa.DataType:
    """The Arrow type Hugging Face ``datasets`` uses for a LeRobot feature."""
    dtype, shape = feature["dtype"], feature["shape"]
    if dtype == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    value = pa.from_numpy_dtype(np.dtype(dtype))
    return value if list(shape) == [1] else pa.list_(value, int(shape[0]))


def _hf_feature(feature: dict[str, Any]) -> dict[str, Any]:
    """The ``datasets`` feature description stored in the parquet metadata (so that plain
    ``datasets.Dataset.from_parquet`` decodes images too)."""
    if feature["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": feature["dtype"], "_type": "Value"}
    if list(feature["shape"]) == [1]:
        return value
    return {"feature": value, "length": int(feature["shape"][0]), "_type": "Sequence"}


def _data_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    hf = {"info": {"features": {key: _hf_feature(ft) for key, ft in features.items()}}}
    return pa.schema(
        [(key, _arrow_type(ft)) for key, ft in features.items()],
        metadata={b"huggingface": json.dumps(hf).encode()},
    )


def _png(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def _episode_columns(
    frames: EpisodeFrames, episode_index: int, task_index: int, start: int
) -> dict[str, np.ndarray]:
    """The frame-level arrays of one episode, keyed by feature."""
    n = len(frames)
    done = np.zeros(n, dtype=bool)
    done[-1] = True
    success = done & bool(frames.success)
    return {
        "observation.state": frames.state.astype(np.float32),
        "action": frames.action.astype(np.float32),
        "next.reward": success.astype(np.float32),
        "next.done": done,
        "next.success": success,
        "complementary_info.is_intervention": frames.intervention.astype(np.float32),
        "timestamp": (np.arange(n) / frames.fps).astype(np.float32),
        "frame_index": np.arange(n, dtype=np.int64),
        "episode_index": np.full(n, episode_index, dtype=np.int64),
        "index": np.arange(start, start + n, dtype=np.int64),
        "task_index": np.full(n, task_index, dtype=np.int64),
    }


def _episode_table(columns: dict[str, np.ndarray], frames: EpisodeFrames, schema: pa.Schema) -> pa.Table:
    arrays = {}
    for name, camera in IMAGE_KEYS.items():
        arrays[camera] = pa.array(
            [
                {"bytes": _png(img), "path": f"{name}-{i:06d}.png"}
                for i, img in enumerate(frames.images[name])
            ],
            type=schema.field(camera).type,
        )
    for key, values in columns.items():
        field_type = schema.field(key).type
        if pa.types.is_fixed_size_list(field_type):
            flat = pa.array(values.reshape(-1), type=field_type.value_type)
            arrays[key] = pa.FixedSizeListArray.from_arrays(flat, field_type.list_size)
        else:
            arrays[key] = pa.array(values, type=field_type)
    return pa.table([arrays[f.name] for f in schema], schema=schema)


def _stats(values: np.ndarray, keep_channel: bool = False) -> dict[str, np.ndarray]:
    """lerobot's per-feature statistics over the first axis; for images (N, H, W, C) in [0, 1], per
    channel with shape (C, 1, 1)."""
    if keep_channel:
        per_channel = np.moveaxis(values, -1, 0).reshape(values.shape[-1], -1)
        reduce = {"min": np.min, "max": np.max, "mean": np.mean, "std": np.std}
        stats = {k: f(per_channel, axis=1).reshape(-1, 1, 1) for k, f in reduce.items()}
        stats.update({k: np.quantile(per_channel, q, axis=1).reshape(-1, 1, 1) for k, q in QUANTILES.items()})
    else:
        data = values.reshape(len(values), -1)
        numeric = data.astype(np.float64)
        stats = {
            "min": data.min(axis=0),
            "max": data.max(axis=0),
            "mean": numeric.mean(axis=0),
            "std": numeric.std(axis=0),
        }
        stats.update({k: np.quantile(numeric, q, axis=0) for k, q in QUANTILES.items()})
    stats["count"] = np.array([len(values)], dtype=np.int64)
    return stats


def _image_sample(images: np.ndarray) -> np.ndarray:
    """Up to STATS_SAMPLE_IMAGES evenly spaced images, downsampled to at most ~150 px, in [0, 1]."""
    idx = np.unique(
        np.round(np.linspace(0, len(images) - 1, min(len(images), STATS_SAMPLE_IMAGES))).astype(int)
    )
    sample = images[idx]
    step = max(1, max(sample.shape[1:3]) // 150) if max(sample.shape[1:3]) >= 300 else 1
    return sample[:, ::step, ::step].astype(np.float64) / 255.0


def _episode_stats(columns: dict[str, np.ndarray], frames: EpisodeFrames) -> dict[str, dict[str, np.ndarray]]:
    stats = {key: _stats(values) for key, values in columns.items()}
    for name, key in IMAGE_KEYS.items():
        stats[key] = _stats(_image_sample(frames.images[name]), keep_channel=True)
    return stats


def aggregate_stats(stats_list: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """Dataset statistics from per-episode ones, as lerobot aggregates them: min of mins, max of
    maxes, count-weighted mean, pooled variance; quantiles as count-weighted means (an estimate)."""
    result = {}
    for key in stats_list[0]:
        per = [s[key] for s in stats_list]
        counts = np.array([s["count"][0] for s in per], dtype=np.float64)
        total = counts.sum()
        means = np.stack([s["mean"] for s in per])
        w = counts.reshape(-1, *([1] * (means.ndim - 1)))
        mean = (means * w).sum(axis=0) / total
        variance = ((np.stack([s["std"] for s in per]) ** 2 + (means - mean) ** 2) * w).sum(axis=0) / total
        agg = {
            "min": np.min(np.stack([s["min"] for s in per]), axis=0),
            "max": np.max(np.stack([s["max"] for s in per]), axis=0),
            "mean": mean,
            "std": np.sqrt(variance),
            "count": np.array([int(total)], dtype=np.int64),
        }
        for q in QUANTILES:
            agg[q] = (np.stack([s[q] for s in per]) * w).sum(axis=0) / total
        result[key] = agg
    return result


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {key: {k: np.asarray(v).tolist() for k, v in s.items()} for key, s in stats.items()}


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """tasks.parquet as pandas writes ``DataFrame({"task_index": ...}, index=Index(tasks, name="task"))``:
    lerobot reads the sentence back from the DataFrame's index (``tasks.iloc[i].name``), so the
    ``pandas`` metadata that names the index column is part of the format."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    schema = pa.schema(
        [("task_index", pa.int64()), ("task", pa.string())],
        metadata={b"pandas": json.dumps(pandas_meta).encode()},
    )
    table = pa.table([pa.array(range(len(tasks)), pa.int64()), pa.array(tasks, pa.string())], schema=schema)
    pq.write_table(table, path)


def read_tasks(path: str | Path) -> list[str]:
    """Task sentences of an exported dataset, ordered by task_index."""
    table = pq.read_table(Path(path) / TASKS_PATH)
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    index_columns = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    if not index_columns:
        raise LeRobotFormatError(f"{TASKS_PATH}: the task strings are not the (pandas) index")
    order = np.argsort(table["task_index"].to_numpy())
    return [table[index_columns[0]].to_pylist()[i] for i in order]


def _episodes_table(rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key == "tasks":
            columns[key] = pa.array(values, pa.list_(pa.string()))
        elif isinstance(values[0], np.ndarray):
            columns[key] = pa.array([v.tolist() for v in values])
        else:
            columns[key] = pa.array(values)
    return pa.table(columns)


def export_lerobot(
    root: str | Path,
    out_dir: str | Path,
    fps: float = DEFAULT_FPS,
    image_size: tuple[int, int] | None = None,
    skills: Iterable[str] | None = None,
    only_successful: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> ExportResult:
    """Write the finished episodes under ``root`` as a LeRobot v3.0 dataset in ``out_dir``.

    ``image_size`` = (height, width) resizes images (default: as recorded; every episode must then
    have the same size). ``skills`` keeps only those skills; ``only_successful`` only episodes whose
    outcome is success. The dataset is built in ``<out_dir>.partial`` and renamed into place, so an
    interrupted export never leaves something that looks finished.
    """
    if int(fps) != fps or fps <= 0:
        raise ValueError(f"LeRobot datasets need a positive integer fps, got {fps}")
    fps = int(fps)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True to replace it)")
    from meta_robot.engine.store import is_engine_dataset

    if is_engine_dataset(root):  # the data engine's stored states, rendered from the cache
        from meta_robot.engine.dataset import engine_frames

        episodes, frames_of = engine_frames(root, fps, image_size, skills, only_successful, progress)
    else:
        episodes = [
            e for e in list_episodes(root, skills) if not only_successful or e.metadata.outcome == "success"
        ]

        def frames_of(episode: Episode) -> EpisodeFrames:
            return resample_episode(episode, fps=fps, image_size=image_size)

    if not episodes:
        raise ValueError(
            f"no finished episodes to export under {root}"
            f" (skills={skills}, only_successful={only_successful})"
        )
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "meta").mkdir(parents=True)

    tasks: list[str] = []
    features: dict[str, dict[str, Any]] | None = None
    schema: pa.Schema | None = None
    writer: pq.ParquetWriter | None = None
    chunk_index = file_index = 0
    episode_rows: list[dict[str, Any]] = []
    all_stats = []
    skipped = []
    total = 0
    try:
        for episode in tqdm(episodes, desc="export", unit="episode", disable=not progress):
            frames = frames_of(episode)
            if len(frames) == 0:
                logger.warning("episode %s has no complete step at %d Hz; skipped", episode.episode_id, fps)
                skipped.append(episode.episode_id)
                continue
            shape = tuple(int(s) for s in frames.images["front"].shape[1:])
            if features is None or schema is None:
                features = build_features(shape)  # type: ignore[arg-type]
                schema = _data_schema(features)
            elif (
                tuple(features[IMAGE_KEYS["front"]]["shape"]) != shape
                or frames.images["wrist"].shape[1:] != shape
            ):
                raise ValueError(
                    f"episode {episode.episode_id} has {shape} images, others"
                    f" {features[IMAGE_KEYS['front']]['shape']}:"
                    " pass image_size to export episodes of different camera resolutions together"
                )
            task = task_string(episode)
            if task not in tasks:
                tasks.append(task)
            episode_index = len(episode_rows)
            columns = _episode_columns(frames, episode_index, tasks.index(task), total)
            if writer is None:
                path = work / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(_episode_table(columns, frames, schema))
            stats = _episode_stats(columns, frames)
            all_stats.append(stats)
            row: dict[str, Any] = {
                "episode_index": episode_index,
                "tasks": [task],
                "length": len(frames),
                "data/chunk_index": chunk_index,
                "data/file_index": file_index,
                "dataset_from_index": total,
                "dataset_to_index": total + len(frames),
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
                "meta_robot/episode_id": episode.episode_id,
                "meta_robot/outcome": episode.metadata.outcome,
            }
            row.update({f"stats/{key}/{k}": np.asarray(v) for key, s in stats.items() for k, v in s.items()})
            episode_rows.append(row)
            total += len(frames)
            if os.path.getsize(writer.where) >= DATA_FILES_SIZE_IN_MB * 1024 * 1024:
                writer.close()
                writer = None
                file_index += 1
                if file_index == CHUNKS_SIZE:
                    chunk_index, file_index = chunk_index + 1, 0
    finally:
        if writer is not None:
            writer.close()
    if not episode_rows or features is None:
        shutil.rmtree(work, ignore_errors=True)
        raise ValueError(f"none of the {len(episodes)} episodes under {root} has a complete step at {fps} Hz")

    episodes_path = work / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_episodes_table(episode_rows), episodes_path)
    _write_tasks(work / TASKS_PATH, tasks)
    (work / STATS_PATH).write_text(json.dumps(_jsonable(aggregate_stats(all_stats)), indent=4))
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": ROBOT_TYPE,
        "total_episodes": len(episode_rows),
        "total_frames": total,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": fps,
        "splits": {"train": f"0:{len(episode_rows)}"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": features,
    }
    (work / INFO_PATH).write_text(json.dumps(info, indent=4))
    if out.exists():
        shutil.rmtree(out)
    os.replace(work, out)
    logger.info("exported %d episodes, %d frames, %d tasks to %s", len(episode_rows), total, len(tasks), out)
    return ExportResult(out, len(episode_rows), total, tasks, skipped)


# -- validation --------------------------------------------------------------------------------------
INFO_KEYS = (
    "codebase_version",
    "robot_type",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_files_size_in_mb",
    "video_files_size_in_mb",
    "fps",
    "splits",
    "data_path",
    "video_path",
    "features",
)
EPISODE_COLUMNS = (
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)
NUMERIC_DTYPES = {"float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"}


def _check_column_type(key: str, feature: dict[str, Any], column_type: pa.DataType) -> str | None:
    """Whether a data column's Arrow type can hold the feature (as ``datasets`` would cast it)."""
    dtype, shape = feature["dtype"], list(feature["shape"])
    if dtype == "image":
        if not (pa.types.is_struct(column_type) and {f.name for f in column_type} >= {"bytes", "path"}):
            return f"column {key}: type {column_type} is not an image struct {{bytes, path}}"
        return None
    expected = pa.from_numpy_dtype(np.dtype(dtype))
    if shape == [1]:
        if column_type != expected:
            return f"column {key}: type {column_type}, feature says {dtype}"
        return None
    if len(shape) != 1:
        return f"column {key}: only 1-D vector features are checked, shape {shape}"
    if not (pa.types.is_list(column_type) or pa.types.is_fixed_size_list(column_type)):
        return f"column {key}: type {column_type} is not a list, feature shape {shape}"
    if column_type.value_type != expected:
        return f"column {key}: items are {column_type.value_type}, feature says {dtype}"
    if pa.types.is_fixed_size_list(column_type) and column_type.list_size != shape[0]:
        return f"column {key}: fixed size {column_type.list_size}, feature shape {shape}"
    return None


def validate_lerobot_dataset(path: str | Path, decode_images: bool = True) -> dict[str, Any]:
    """Check an exported folder against LeRobot's documented v3.0 structure, as lerobot's loader
    reads it: info.json keys and feature schema; data parquet columns and types matching the
    features; ``index`` contiguous from 0; each episode's rows, frame indices and timestamps matching
    its ``dataset_from_index``/``dataset_to_index`` and data file in the episodes parquet; every task
    referenced existing in tasks.parquet; image bytes decoding to the declared shape; statistics
    present for every feature (in stats.json and per episode).

    This validates the documented format, not lerobot's loader itself (lerobot cannot be installed
    beside this project's torch). Returns a summary; raises :class:`LeRobotFormatError` listing
    every problem found.
    """
    root = Path(path)
    problems: list[str] = []

    def fail() -> LeRobotFormatError:
        return LeRobotFormatError(f"{root} is not a valid LeRobot v3.0 dataset:\n  " + "\n  ".join(problems))

    try:
        info = json.loads((root / INFO_PATH).read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{INFO_PATH}: {exc}")
        raise fail() from exc
    problems += [f"{INFO_PATH}: missing key {k!r}" for k in INFO_KEYS if k not in info]
    if problems:
        raise fail()
    if info["codebase_version"] != CODEBASE_VERSION:
        problems.append(f"codebase_version {info['codebase_version']!r}, expected {CODEBASE_VERSION!r}")
    if not isinstance(info["fps"], int) or info["fps"] <= 0:
        problems.append(f"fps must be a positive integer, got {info['fps']!r}")
    features: dict[str, dict[str, Any]] = info["features"]
    unusable = False  # a schema too broken to check the data against
    for key, ft in features.items():
        if "/" in key:
            problems.append(f"feature {key!r}: names must not contain '/'")
        if not {"dtype", "shape", "names"} <= set(ft):
            problems.append(f"feature {key!r}: needs dtype, shape and names, has {sorted(ft)}")
            unusable = True
            continue
        if not (
            isinstance(ft["shape"], list)
            and ft["shape"]
            and all(isinstance(s, int) and s > 0 for s in ft["shape"])
        ):
            problems.append(f"feature {key!r}: bad shape {ft['shape']!r}")
            unusable = True
        if ft["dtype"] in ("image", "video"):
            if len(ft["shape"]) != 3 or ft["names"] not in (
                ["height", "width", "channels"],
                ["height", "width", "channel"],
            ):
                problems.append(f"feature {key!r}: images need shape (h, w, c) named height/width/channels")
            if ft["dtype"] == "video" and not info["video_path"]:
                problems.append(f"feature {key!r} is a video but video_path is null")
        elif ft["dtype"] not in NUMERIC_DTYPES | {"string"}:
            problems.append(f"feature {key!r}: unknown dtype {ft['dtype']!r}")
        names = ft["names"]
        if isinstance(names, list) and ft["dtype"] not in ("image", "video") and len(names) != ft["shape"][0]:
            problems.append(f"feature {key!r}: {len(names)} names for shape {ft['shape']}")
    for key in INDEX_FEATURES:
        expected = "float32" if key == "timestamp" else "int64"
        if features.get(key, {}).get("dtype") != expected or features.get(key, {}).get("shape") != [1]:
            problems.append(f"feature {key!r} must be {expected} with shape [1]")
            unusable = True
    if unusable or not isinstance(info["fps"], int) or info["fps"] <= 0:
        raise fail()
    fps = info["fps"]

    # tasks
    try:
        tasks = read_tasks(root)
        task_table = pq.read_table(root / TASKS_PATH)
        if sorted(task_table["task_index"].to_pylist()) != list(range(len(tasks))):
            problems.append(f"{TASKS_PATH}: task_index is not 0..{len(tasks) - 1}")
        if len(set(tasks)) != len(tasks):
            problems.append(f"{TASKS_PATH}: duplicate task strings")
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        problems.append(f"{TASKS_PATH}: {exc}")
        tasks = []
    if len(tasks) != info["total_tasks"]:
        problems.append(f"total_tasks {info['total_tasks']} but {TASKS_PATH} has {len(tasks)}")

    # episodes
    episode_files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not episode_files:
        problems.append("no meta/episodes/chunk-*/file-*.parquet")
        raise fail()
    episodes = pa.concat_tables(
        [pq.read_table(p) for p in episode_files], promote_options="default"
    ).to_pylist()
    missing = [c for c in EPISODE_COLUMNS if episodes and c not in episodes[0]]
    if missing:
        problems.append(f"episodes parquet lacks columns {missing}")
        raise fail()
    episodes.sort(key=lambda e: e["episode_index"])
    if [e["episode_index"] for e in episodes] != list(range(len(episodes))):
        problems.append("episode_index in the episodes parquet is not 0..N-1")
    if len(episodes) != info["total_episodes"]:
        problems.append(
            f"total_episodes {info['total_episodes']} but the episodes parquet has {len(episodes)} rows"
        )
    expected_from = 0
    for e in episodes:
        if e["dataset_from_index"] != expected_from:
            problems.append(
                f"episode {e['episode_index']}: dataset_from_index {e['dataset_from_index']},"
                f" expected {expected_from}"
            )
        if e["dataset_to_index"] - e["dataset_from_index"] != e["length"] or e["length"] <= 0:
            problems.append(
                f"episode {e['episode_index']}: length {e['length']} does not match its index range"
            )
        expected_from = e["dataset_to_index"]
        unknown = [t for t in e["tasks"] or [] if t not in tasks]
        if unknown or not e["tasks"]:
            problems.append(f"episode {e['episode_index']}: tasks {e['tasks']} not all in {TASKS_PATH}")
        for key, ft in features.items():
            if ft["dtype"] in ("string",):
                continue
            lacking = [s for s in BASE_STATS if f"stats/{key}/{s}" not in e]
            if lacking:
                problems.append(f"episode {e['episode_index']}: no per-episode stats {lacking} for {key}")
                break
    if expected_from != info["total_frames"]:
        problems.append(f"total_frames {info['total_frames']} but the episodes end at index {expected_from}")

    # data
    stored = [f for f, ft in features.items() if ft["dtype"] != "video"]
    files = sorted({(e["data/chunk_index"], e["data/file_index"]) for e in episodes})
    row_offset = 0
    images_checked = 0
    for chunk_index, file_index in files:
        data_path = root / info["data_path"].format(chunk_index=chunk_index, file_index=file_index)
        try:
            table = pq.read_table(data_path)
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"{data_path.relative_to(root)}: {exc}")
            continue
        columns = set(table.column_names)
        if columns != set(stored):
            problems.append(
                f"{data_path.relative_to(root)}: columns differ from features "
                f"(missing {sorted(set(stored) - columns)}, extra {sorted(columns - set(stored))})"
            )
            continue
        for key in stored:
            problem = _check_column_type(key, features[key], table.schema.field(key).type)
            if problem:
                problems.append(f"{data_path.relative_to(root)}: {problem}")
            elif features[key]["dtype"] not in ("image", "video", "string") and features[key]["shape"] != [1]:
                lengths = pc.list_value_length(table[key]).to_numpy(zero_copy_only=False)
                if len(lengths) and (lengths != features[key]["shape"][0]).any():
                    problems.append(
                        f"{data_path.relative_to(root)}: {key} rows are not of length"
                        f" {features[key]['shape'][0]}"
                    )
        index = table["index"].to_numpy()
        if not np.array_equal(index, np.arange(row_offset, row_offset + table.num_rows)):
            problems.append(f"{data_path.relative_to(root)}: index is not contiguous from {row_offset}")
        episode_index = table["episode_index"].to_numpy()
        frame_index = table["frame_index"].to_numpy()
        timestamps = table["timestamp"].to_numpy()
        task_index = table["task_index"].to_numpy()
        for e in episodes:
            if (e["data/chunk_index"], e["data/file_index"]) != (chunk_index, file_index):
                continue
            rows = np.flatnonzero(episode_index == e["episode_index"])
            span = index[rows] if len(rows) else np.zeros(0)
            if len(rows) != e["length"] or not np.array_equal(
                span, np.arange(e["dataset_from_index"], e["dataset_to_index"])
            ):
                problems.append(
                    f"episode {e['episode_index']}: its rows in {data_path.name} do not match its index range"
                )
                continue
            if not np.array_equal(frame_index[rows], np.arange(len(rows))):
                problems.append(f"episode {e['episode_index']}: frame_index is not 0..{len(rows) - 1}")
            if not np.allclose(timestamps[rows], frame_index[rows] / fps, atol=1e-4):
                problems.append(f"episode {e['episode_index']}: timestamps are not frame_index / fps")
            used = {tasks[i] if 0 <= i < len(tasks) else None for i in np.unique(task_index[rows])}
            if None in used or not used <= set(e["tasks"]):
                problems.append(
                    f"episode {e['episode_index']}: task_index points outside its tasks {e['tasks']}"
                )
        if decode_images and not any("image" in p for p in problems):
            for key in [k for k in stored if features[k]["dtype"] == "image"]:
                expected = tuple(features[key]["shape"])
                for j, cell in enumerate(table[key].to_pylist()):
                    image = None
                    if cell and cell.get("bytes"):
                        image = cv2.imdecode(np.frombuffer(cell["bytes"], np.uint8), cv2.IMREAD_UNCHANGED)
                    if image is None:
                        problems.append(f"{key} row {row_offset + j}: no decodable image bytes")
                        break
                    if image.ndim == 2:
                        image = image[:, :, None]
                    if image.shape != expected:
                        problems.append(
                            f"{key} row {row_offset + j}: image {image.shape}, feature says {expected}"
                        )
                        break
                    images_checked += 1
        row_offset += table.num_rows
    if row_offset != info["total_frames"]:
        problems.append(f"total_frames {info['total_frames']} but the data files hold {row_offset} rows")

    # stats
    try:
        stats = json.loads((root / STATS_PATH).read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{STATS_PATH}: {exc}")
        stats = {}
    for key, ft in features.items():
        if ft["dtype"] == "string":
            continue
        s = stats.get(key)
        if not isinstance(s, dict) or any(k not in s for k in BASE_STATS):
            problems.append(f"{STATS_PATH}: {key} lacks {list(BASE_STATS)}")
            continue
        want = (ft["shape"][-1], 1, 1) if ft["dtype"] in ("image", "video") else tuple(ft["shape"])
        for k in ("min", "max", "mean", "std"):
            if np.asarray(s[k]).shape != want:
                problems.append(
                    f"{STATS_PATH}: {key}/{k} has shape {np.asarray(s[k]).shape}, expected {want}"
                )
        if np.asarray(s["count"]).shape != (1,):
            problems.append(f"{STATS_PATH}: {key}/count must have shape (1,)")
    if problems:
        raise fail()
    return {
        "path": str(root),
        "episodes": len(episodes),
        "frames": row_offset,
        "tasks": tasks,
        "data_files": len(files),
        "images_checked": images_checked,
    }
