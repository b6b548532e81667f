"""Recover episodes left in ``<root>/.open/`` by a recorder that crashed (SIGKILL, power loss).

Such an MCAP has no summary or footer and may end in half a record. It is read with the ``mcap``
package's stream reader up to the last complete record (whole chunks only: the recorder writes each
chunk in one piece), and its messages are written into a fresh, valid rosbag2 folder that is renamed
to ``<root>/<id>`` with outcome unknown, ``complete: false`` and a note. The crashed original is
deleted only after the recovered copy is in place.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from meta_robot.recording.episode import OPEN_DIR, EpisodeMetadata, TopicInfo
from meta_robot.recording.typestore import typestore as default_typestore
from meta_robot.recording.writer import ROSBAG2_VERSION, fsync_path

logger = logging.getLogger(__name__)
MAGIC = b"\x89MCAP0\r\n"
RECOVERING_DIR = ".recovering"
RECORD_HEADER = struct.Struct("<BQ")  # opcode, record length


@dataclass(frozen=True)
class RecoveredEpisode:
    """What one recovery produced."""

    episode_id: str
    path: Path
    messages: int
    last_time_ns: int
    truncated_bytes: int  # bytes after the last complete record, ignored


class _Bounded(io.RawIOBase):
    """A read-only view of the first ``limit`` bytes of a file."""

    def __init__(self, f: io.BufferedReader, limit: int) -> None:
        self._f, self._left = f, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        data = self._f.read(n)
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


def complete_length(path: Path) -> int:
    """Bytes of ``path`` up to the end of its last complete MCAP record (0 if not an MCAP)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return 0
        pos = len(MAGIC)
        while pos + RECORD_HEADER.size <= size:
            f.seek(pos)
            _, length = RECORD_HEADER.unpack(f.read(RECORD_HEADER.size))
            end = pos + RECORD_HEADER.size + length
            if end > size:
                break
            pos = end
    return pos


def read_tolerant(path: Path):
    """Yield ``(schema, channel, message)`` for every message in the complete records of ``path``."""
    limit = complete_length(path)
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    if limit == 0:
        return
    with open(path, "rb") as f:
        reader = StreamReader(io.BufferedReader(_Bounded(f, limit)), record_size_limit=None)
        records = reader.records
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except Exception:  # EndOfFile at the bound, or a damaged record: stop there
                return
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message) and record.channel_id in channels:
                channel = channels[record.channel_id]
                schema = schemas.get(channel.schema_id)
                if schema is not None:
                    yield schema, channel, record


def _rihs01(store: Typestore, msgtype: str, msgdef: str, extra: dict[str, Typestore]) -> str:
    """The type hash: from our type store, or (a type we do not know) from the recorded definition."""
    try:
        return store.hash_rihs01(msgtype)
    except KeyError:
        if msgtype not in extra:
            own = get_typestore(Stores.ROS2_KILTED)
            own.register(get_types_from_msg(msgdef, msgtype))
            extra[msgtype] = own
        return extra[msgtype].hash_rihs01(msgtype)


def recover_episode(open_dir: Path, root: Path, store: Typestore | None = None) -> RecoveredEpisode:
    """Rewrite one crashed episode as a valid bag in ``<root>/<id>``; delete the original afterwards."""
    store = store or default_typestore()
    open_dir, root = Path(open_dir), Path(root)
    episode_id = open_dir.name
    try:
        meta = EpisodeMetadata.load(open_dir)
    except (OSError, ValueError, KeyError, TypeError):
        meta = EpisodeMetadata(episode_id=episode_id, notes="episode.yaml missing or unreadable")
    final = root / episode_id
    if final.exists():
        raise FileExistsError(f"cannot recover {open_dir}: {final} exists already")
    if meta.complete and (open_dir / "metadata.yaml").is_file():  # crashed between close and rename
        os.rename(open_dir, final)
        fsync_path(root)
        logger.info("recovered %s: it was finished, only the rename was missing", episode_id)
        return RecoveredEpisode(
            episode_id, final, sum(t.count for t in meta.topics.values()), meta.end_time_ns, 0
        )
    mcaps = sorted(open_dir.glob("*.mcap"))
    work = root / RECOVERING_DIR / episode_id  # same folder name: the MCAP is named after it
    work.parent.mkdir(exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)

    bag = Writer(work, version=ROSBAG2_VERSION, storage_plugin=StoragePlugin.MCAP)
    bag.open()
    connections = {}
    extra: dict[str, Typestore] = {}
    counts: dict[str, TopicInfo] = {}
    messages, last_ns, truncated = 0, 0, 0
    try:
        for mcap in mcaps:
            truncated += mcap.stat().st_size - complete_length(mcap)
            for schema, channel, message in read_tolerant(mcap):
                connection = connections.get(channel.topic)
                if connection is None:
                    msgdef = schema.data.decode()
                    connection = bag.add_connection(
                        channel.topic,
                        schema.name,
                        msgdef=msgdef,
                        rihs01=_rihs01(store, schema.name, msgdef, extra),
                    )
                    connections[channel.topic] = connection
                bag.write(connection, message.log_time, message.data)
                info = counts.setdefault(channel.topic, TopicInfo(type=schema.name))
                info.count += 1
                messages += 1
                last_ns = max(last_ns, message.log_time)
        bag.close()
    except BaseException:
        bag.abort()
        shutil.rmtree(work, ignore_errors=True)
        raise

    for topic, info in meta.topics.items():  # keep what the recorder knew of drops
        if topic in counts:
            counts[topic].dropped = info.dropped
    meta.topics = counts
    meta.outcome, meta.complete = "unknown", False
    meta.end_time_ns = max(last_ns, meta.start_time_ns)
    for span in meta.interventions:
        if span.end_ns < span.start_ns:
            span.end_ns = meta.end_time_ns
    note = f"recovered after crash: {messages} messages up to t={last_ns} ns"
    if truncated:
        note += f" ({truncated} bytes of an unfinished chunk lost)"
    meta.notes = f"{meta.notes}\n{note}".strip()
    meta.save(work)
    for path in work.iterdir():
        fsync_path(path)
    fsync_path(work)
    os.rename(work, final)
    fsync_path(root)
    shutil.rmtree(open_dir)
    fsync_path(root / OPEN_DIR)
    logger.info("recovered %s: %s", episode_id, note)
    return RecoveredEpisode(episode_id, final, messages, last_ns, truncated)


def recover_open_episodes(root: Path, store: Typestore | None = None) -> list[RecoveredEpisode]:
    """Recover every episode left in ``<root>/.open/``; returns what was recovered.

    A leftover ``<root>/.recovering/`` (a recovery that was itself interrupted) is deleted: its
    originals are still in ``.open`` and are recovered again.
    """
    shutil.rmtree(Path(root) / RECOVERING_DIR, ignore_errors=True)
    folder = Path(root) / OPEN_DIR
    if not folder.is_dir():
        return []
    recovered = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            recovered.append(recover_episode(path, Path(root), store))
    return recovered
