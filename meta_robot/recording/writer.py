"""Write episodes as rosbag2 folders (MCAP storage) that survive a crash up to their last chunk.

:class:`EpisodeWriter` is the synchronous core: it opens ``<root>/.open/<id>/`` with rosbags' Writer,
adds a connection per topic on first use, writes raw CDR with its timestamp, and on :meth:`finish`
closes the bag, writes the final ``episode.yaml``, fsyncs and renames the folder to ``<root>/<id>``
(atomic on one filesystem: the dataset tools never see half an episode). rosbags buffers a chunk in
memory and writes it whole; here every chunk is closed at ``chunk_size`` bytes or ``flush_interval``
seconds and flushed to the OS at once, so a SIGKILLed recorder leaves an MCAP readable up to its last
chunk (see :mod:`meta_robot.recording.recover`).

:class:`EpisodeRecorder` runs one writer on a thread of its own behind a bounded queue, so a slow disk
never blocks the ROS executor; what does not fit in the queue is dropped and counted per topic.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys.store import Typestore

from meta_robot.recording.disk import DiskGuard
from meta_robot.recording.episode import (
    OPEN_DIR,
    CameraCalibration,
    EpisodeMetadata,
    InterventionSpan,
    TopicInfo,
)
from meta_robot.recording.typestore import typestore as default_typestore

logger = logging.getLogger(__name__)
ROSBAG2_VERSION = 9
MIB = 1024**2
# rosbags' MCAP storage closes a chunk by itself once it holds 1 MiB; ours can only be smaller.
ROSBAGS_CHUNK_LIMIT = MIB


@dataclass(frozen=True)
class WriterOptions:
    """How data reaches the disk."""

    chunk_size: int = ROSBAGS_CHUNK_LIMIT  # bytes; a chunk is closed and flushed at this size
    flush_interval: float = 1.0  # s; a non-empty chunk older than this is closed and flushed too

    def __post_init__(self) -> None:
        if not 1024 <= self.chunk_size <= ROSBAGS_CHUNK_LIMIT:
            raise ValueError(
                f"chunk_size must be in [1024, {ROSBAGS_CHUNK_LIMIT}] bytes, got {self.chunk_size}"
            )
        if not self.flush_interval > 0:
            raise ValueError(f"flush_interval must be > 0 s, got {self.flush_interval}")


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a rename is durable only once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def calibration_from_camera_info(msg: Any) -> CameraCalibration:
    """The calibration block from a (deserialized) sensor_msgs/CameraInfo."""
    return CameraCalibration(
        width=int(msg.width),
        height=int(msg.height),
        k=[float(v) for v in msg.k],
        d=[float(v) for v in msg.d],
        distortion_model=str(msg.distortion_model),
        frame_id=str(msg.header.frame_id),
    )


class EpisodeWriter:
    """One episode being written: open on construction, then :meth:`write`, then finish or discard."""

    def __init__(
        self,
        root: Path,
        metadata: EpisodeMetadata,
        store: Typestore | None = None,
        options: WriterOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.metadata = metadata
        self.store = store or default_typestore()
        self.options = options or WriterOptions()
        self.clock = clock
        self.open_dir = self.root / OPEN_DIR / metadata.episode_id
        self.final_dir = self.root / metadata.episode_id
        if self.final_dir.exists():
            raise FileExistsError(f"episode {self.final_dir} exists already")
        (self.root / OPEN_DIR).mkdir(parents=True, exist_ok=True)
        self._bag = Writer(self.open_dir, version=ROSBAG2_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._bag.open()
        self._storage = self._bag.storage
        if not all(hasattr(self._storage, a) for a in ("chunk", "chunks", "close_chunk", "bio")):
            self._bag.abort()
            shutil.rmtree(self.open_dir, ignore_errors=True)
            raise RuntimeError("this rosbags version's MCAP writer lacks the chunk API the recorder flushes")
        self._connections: dict[str, Any] = {}
        self._chunks_flushed = 0
        self._chunk_opened: float | None = None
        self._open_span: InterventionSpan | None = None
        self.messages = 0
        self.bytes = 0
        self.last_time_ns = 0
        self.closed = False
        metadata.outcome, metadata.complete = "unknown", False
        metadata.save(self.open_dir)
        fsync_path(self.open_dir)
        fsync_path(self.open_dir.parent)

    # -- messages ----------------------------------------------------------------------------------
    def write(self, topic: str, msgtype: str, data: bytes | memoryview, timestamp_ns: int) -> None:
        """Append one serialized (CDR) message; the connection is added on the topic's first message."""
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._bag.add_connection(topic, msgtype, typestore=self.store)
            self._connections[topic] = connection
            self.metadata.topics.setdefault(topic, TopicInfo(type=msgtype))
        if self._chunk_opened is None:
            self._chunk_opened = self.clock()
        self._bag.write(connection, int(timestamp_ns), data)
        self.metadata.topics[topic].count += 1
        self.messages += 1
        self.bytes += len(data)
        self.last_time_ns = max(self.last_time_ns, int(timestamp_ns))
        if len(self._storage.chunks) != self._chunks_flushed:  # rosbags closed one at its own limit
            self._flush_file()
        elif self._storage.chunk.bio.tell() >= self.options.chunk_size:
            self.flush()

    def note_dropped(self, topic: str, msgtype: str, count: int) -> None:
        """Record messages of ``topic`` that never reached the writer (queue full)."""
        self.metadata.topics.setdefault(topic, TopicInfo(type=msgtype)).dropped += count

    def flush(self) -> None:
        """Close the pending chunk (if any) and hand it to the OS: readable after a crash."""
        if self._storage.chunk.bio.tell():
            self._storage.close_chunk()
        self._flush_file()

    def flush_if_due(self) -> None:
        """Flush a chunk that has been open longer than ``flush_interval``."""
        if (
            self._chunk_opened is not None
            and self.clock() - self._chunk_opened >= self.options.flush_interval
        ):
            self.flush()

    def _flush_file(self) -> None:
        self._storage.bio.flush()
        self._chunks_flushed = len(self._storage.chunks)
        self._chunk_opened = None

    # -- metadata ----------------------------------------------------------------------------------
    def intervention(self, active: bool, stamp_ns: int, device: str) -> None:
        """Open or close an intervention span; saved to the open episode.yaml at once, so a crash keeps
        it (an open span is saved with ``end_ns`` 0 and closed at the end by finish or recovery)."""
        if active and self._open_span is None:
            self._open_span = InterventionSpan(start_ns=int(stamp_ns), end_ns=0, device=device)
            self.metadata.interventions.append(self._open_span)
        elif not active and self._open_span is not None:
            self._open_span.end_ns = max(int(stamp_ns), self._open_span.start_ns)
            self._open_span = None
        else:
            return
        self.metadata.save(self.open_dir)

    # -- end ---------------------------------------------------------------------------------------
    def finish(
        self,
        outcome: str,
        end_time_ns: int,
        notes: str = "",
        calibration: dict[str, CameraCalibration] | None = None,
    ) -> Path:
        """Close the bag, write the final episode.yaml, fsync, rename into ``<root>/<id>``."""
        if self.closed:
            raise RuntimeError(f"episode {self.metadata.episode_id} is already closed")
        meta = self.metadata
        meta.outcome = outcome
        meta.end_time_ns = max(int(end_time_ns), meta.start_time_ns)
        if self._open_span is not None:
            self._open_span.end_ns = max(meta.end_time_ns, self._open_span.start_ns)
            self._open_span = None
        if notes:
            meta.notes = f"{meta.notes}\n{notes}".strip()
        if calibration:
            meta.calibration.update(calibration)
        self._bag.close()  # writes the MCAP summary and metadata.yaml
        self.closed = True
        meta.complete = True
        meta.save(self.open_dir)
        for path in self.open_dir.iterdir():
            fsync_path(path)
        fsync_path(self.open_dir)
        os.rename(self.open_dir, self.final_dir)
        fsync_path(self.root)
        fsync_path(self.open_dir.parent)
        logger.info("episode %s finished (%s, %d messages)", meta.episode_id, outcome, self.messages)
        return self.final_dir

    def discard(self) -> None:
        """Stop writing and delete the open episode."""
        if not self.closed:
            self._bag.abort()
            self.closed = True
        shutil.rmtree(self.open_dir, ignore_errors=True)
        logger.info("episode %s discarded", self.metadata.episode_id)


# --------------------------------------------------------------------------------------------------
@dataclass
class RecorderStatus:
    """A snapshot for status messages and logs."""

    recording: bool
    episode_id: str
    task: str = ""
    skill: str = ""
    arguments: list[str] = field(default_factory=list)
    messages: int = 0
    bytes: int = 0
    start_time_ns: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    episodes_completed: int = 0
    last_outcome: str = ""
    last_path: str = ""


@dataclass
class _Message:
    topic: str
    msgtype: str
    data: bytes | memoryview
    timestamp_ns: int


@dataclass
class _Control:
    action: Callable[[], Any]
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


class EpisodeRecorder:
    """An :class:`EpisodeWriter` on a dedicated thread, fed by a bounded queue.

    ``submit`` never blocks: it is called from ROS callbacks. Control calls (open, finish, discard)
    are queued behind the messages already accepted, so an episode holds exactly what arrived while
    it was open, and they wait for the writer thread to carry them out. ``guard`` is checked every
    ``disk_check_period`` s while recording; when space runs low the episode is finished with outcome
    unknown and a note, and ``on_auto_stop`` is told why.
    """

    def __init__(
        self,
        root: Path,
        store: Typestore | None = None,
        options: WriterOptions | None = None,
        max_queue_bytes: int = 256 * MIB,
        guard: DiskGuard | None = None,
        disk_check_period: float = 2.0,
        on_auto_stop: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.store = store or default_typestore()
        self.options = options or WriterOptions()
        self.max_queue_bytes = int(max_queue_bytes)
        self.guard = guard
        self.disk_check_period = disk_check_period
        self.on_auto_stop = on_auto_stop
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[_Message | _Control] = collections.deque()
        self._queued_bytes = 0
        self._accepting = False
        self._dropped: dict[str, list[Any]] = {}  # topic -> [msgtype, count]
        self._writer: EpisodeWriter | None = None
        self._stopping = False
        self._completed = 0
        self._last_outcome = ""
        self._last_id = ""
        self._last_path = ""
        self._next_disk_check = 0.0
        self._thread = threading.Thread(target=self._run, name="episode-writer", daemon=True)
        self._thread.start()

    # -- caller side --------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        """Whether an episode is open (messages are being accepted)."""
        return self._accepting

    def submit(self, topic: str, msgtype: str, data: bytes | memoryview, timestamp_ns: int) -> bool:
        """Queue one message for the open episode; False if none is open or the queue is full."""
        with self._lock:
            if not self._accepting:
                return False
            if self._queued_bytes + len(data) > self.max_queue_bytes:
                self._dropped.setdefault(topic, [msgtype, 0])[1] += 1
                return False
            self._queue.append(_Message(topic, msgtype, data, timestamp_ns))
            self._queued_bytes += len(data)
            self._wake.notify()
            return True

    def open(self, metadata: EpisodeMetadata, timeout: float = 30.0) -> Path:
        """Open a new episode (refused with RuntimeError if one is open); returns its open folder."""
        if self.guard is not None:
            self.guard.check(self.root)
        with self._lock:
            if self._accepting or self._writer is not None:
                raise RuntimeError("an episode is already open")
            self._dropped = {}

        def action() -> Path:
            self._writer = EpisodeWriter(self.root, metadata, self.store, self.options)
            self._next_disk_check = time.monotonic() + self.disk_check_period
            with self._lock:
                self._accepting = True
            return self._writer.open_dir

        return self._control(action, timeout)

    def intervention(self, active: bool, stamp_ns: int, device: str) -> None:
        """Queue an intervention change for the open episode (ignored when none is open)."""
        if self._accepting:
            self._control(lambda: self._writer and self._writer.intervention(active, stamp_ns, device), None)

    def finish(
        self,
        outcome: str,
        end_time_ns: int,
        notes: str = "",
        calibration: dict[str, CameraCalibration] | None = None,
        timeout: float = 60.0,
    ) -> Path:
        """Finish the open episode with ``outcome``; returns the finished folder."""
        self._stop_accepting()
        return self._control(lambda: self._finish(outcome, end_time_ns, notes, calibration), timeout)

    def discard(self, timeout: float = 60.0) -> str:
        """Delete the open episode; returns its id."""
        self._stop_accepting()

        def action() -> str:
            writer = self._require_writer()
            self._writer = None
            writer.discard()
            self._last_outcome, self._last_id, self._last_path = "discarded", writer.metadata.episode_id, ""
            return writer.metadata.episode_id

        return self._control(action, timeout)

    def status(self) -> RecorderStatus:
        """What is being recorded now (or what was recorded last)."""
        writer = self._writer
        with self._lock:
            dropped = {t: c for t, (_, c) in self._dropped.items()}
        if writer is not None and not writer.closed:
            meta = writer.metadata
            return RecorderStatus(
                recording=self._accepting,
                episode_id=meta.episode_id,
                task=meta.task,
                skill=meta.skill,
                arguments=list(meta.arguments),
                messages=writer.messages,
                bytes=writer.bytes,
                start_time_ns=meta.start_time_ns,
                dropped=dropped,
                episodes_completed=self._completed,
                last_outcome=self._last_outcome,
                last_path=self._last_path,
            )
        return RecorderStatus(
            recording=False,
            episode_id=self._last_id,
            dropped=dropped,
            episodes_completed=self._completed,
            last_outcome=self._last_outcome,
            last_path=self._last_path,
        )

    def close(self, end_time_ns: int, notes: str = "recorder shut down") -> Path | None:
        """Finish an open episode with outcome unknown, then stop the writer thread."""
        path = None
        if self._writer is not None and not self._writer.closed:
            try:
                path = self.finish("unknown", end_time_ns, notes)
            except RuntimeError:
                logger.exception("could not finish the open episode at shutdown")
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=30.0)
        return path

    # -- writer thread ------------------------------------------------------------------------------
    def _control(self, action: Callable[[], Any], timeout: float | None) -> Any:
        item = _Control(action)
        with self._lock:
            if self._stopping:
                raise RuntimeError("the recorder is shut down")
            self._queue.append(item)
            self._wake.notify()
        if timeout is None:
            return None
        return item.future.result(timeout=timeout)

    def _stop_accepting(self) -> None:
        with self._lock:
            if not self._accepting:
                raise RuntimeError("no episode is open")
            self._accepting = False

    def _require_writer(self) -> EpisodeWriter:
        if self._writer is None or self._writer.closed:
            raise RuntimeError("no episode is open")
        return self._writer

    def _finish(
        self, outcome: str, end_time_ns: int, notes: str, calibration: dict[str, CameraCalibration] | None
    ) -> Path:
        writer = self._require_writer()
        with self._lock:
            dropped, self._dropped = self._dropped, {}
        for topic, (msgtype, count) in dropped.items():
            writer.note_dropped(topic, msgtype, count)
        if dropped:
            lost = sum(c for _, c in dropped.values())
            notes = f"{notes}\ndropped (writer queue full): {lost} messages".strip()
        self._writer = None
        path = writer.finish(outcome, end_time_ns, notes, calibration)
        self._completed += 1
        self._last_outcome, self._last_id, self._last_path = outcome, writer.metadata.episode_id, str(path)
        return path

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    if not self._wake.wait(
                        timeout=min(self.options.flush_interval, self.disk_check_period) / 2
                    ):
                        break
                if self._stopping and not self._queue:
                    return
                item = self._queue.popleft() if self._queue else None
                if isinstance(item, _Message):
                    self._queued_bytes -= len(item.data)
            try:
                self._handle(item)
            except Exception as exc:  # keep the thread alive; the episode is closed as well as it can be
                logger.exception("episode writer failed")
                self._fail(exc)

    def _handle(self, item: _Message | _Control | None) -> None:
        if isinstance(item, _Control):
            try:
                item.future.set_result(item.action())
            except Exception as exc:
                item.future.set_exception(exc)
            return
        writer = self._writer
        if writer is None or writer.closed:
            return
        if item is not None:
            writer.write(item.topic, item.msgtype, item.data, item.timestamp_ns)
        writer.flush_if_due()
        if self.guard is not None and time.monotonic() >= self._next_disk_check:
            self._next_disk_check = time.monotonic() + self.disk_check_period
            problem = self.guard.shortfall(self.root)
            if problem is not None:
                self._auto_stop(f"stopped early: {problem}")

    def _auto_stop(self, reason: str) -> None:
        with self._lock:
            self._accepting = False
            pending = [i for i in self._queue if isinstance(i, _Message)]
            for item in pending:
                self._dropped.setdefault(item.topic, [item.msgtype, 0])[1] += 1
            self._queue = collections.deque(i for i in self._queue if isinstance(i, _Control))
            self._queued_bytes = 0
        writer = self._require_writer()
        self._finish("unknown", writer.last_time_ns, reason, None)
        logger.error("episode %s %s", writer.metadata.episode_id, reason)
        if self.on_auto_stop is not None:
            self.on_auto_stop(reason)

    def _fail(self, exc: Exception) -> None:
        writer, self._writer = self._writer, None
        with self._lock:
            self._accepting = False
        if writer is None or writer.closed:
            return
        try:
            self._writer = writer
            self._finish("unknown", writer.last_time_ns, f"stopped early: write error: {exc}", None)
        except Exception:
            self._writer = None
            logger.exception(
                "could not finish episode %s; it stays in %s", writer.metadata.episode_id, OPEN_DIR
            )
        if self.on_auto_stop is not None:
            self.on_auto_stop(f"write error: {exc}")
