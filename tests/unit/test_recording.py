"""The episode writer, disk guard and crash recovery, without ROS: real bags read back with rosbags
and with the mcap package (the two readers the dataset tools and Foxglove use)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.highlevel import AnyReader

from meta_robot.recording.disk import GIB, DiskGuard, DiskSpaceError, DiskUsage
from meta_robot.recording.episode import OPEN_DIR, EpisodeMetadata, make_episode_id, next_sequence
from meta_robot.recording.recover import complete_length, read_tolerant, recover_open_episodes
from meta_robot.recording.typestore import typestore
from meta_robot.recording.writer import (
    EpisodeRecorder,
    EpisodeWriter,
    WriterOptions,
    calibration_from_camera_info,
)

STORE = typestore()
TYPES = STORE.types
T0 = 1_700_000_000_000_000_000


def serialize(msg, msgtype: str) -> bytes:
    return bytes(STORE.serialize_cdr(msg, msgtype))


def header(t_ns: int, frame: str = "base"):
    return TYPES["std_msgs/msg/Header"](
        stamp=TYPES["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9), frame_id=frame
    )


def joint_state(i: int) -> bytes:
    msg = TYPES["sensor_msgs/msg/JointState"](
        header=header(T0 + i * 10**7),
        name=["j1", "j2"],
        position=np.array([0.1 * i, -0.1 * i]),
        velocity=np.zeros(2),
        effort=np.zeros(2),
    )
    return serialize(msg, "sensor_msgs/msg/JointState")


def image(i: int, width: int = 64, height: int = 48) -> bytes:
    data = np.full(width * height * 3, i % 256, dtype=np.uint8)
    msg = TYPES["sensor_msgs/msg/Image"](
        header=header(T0 + i * 10**7, "cam"),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=data,
    )
    return serialize(msg, "sensor_msgs/msg/Image")


def intervention(active: bool, device: str = "spacemouse") -> bytes:
    msg = TYPES["meta_robot_interfaces/msg/Intervention"](
        header=header(T0), active=active, device=device, reason="test"
    )
    return serialize(msg, "meta_robot_interfaces/msg/Intervention")


def metadata(root: Path, skill: str = "open_drawer") -> EpisodeMetadata:
    return EpisodeMetadata(
        episode_id=make_episode_id(root, skill),
        task="open the drawer",
        skill=skill,
        arguments=["drawer_top"],
        seed=7,
        operator="pytest",
        start_time_ns=T0,
    )


def write_episode(writer: EpisodeWriter, joints: int = 50, images: int = 10) -> None:
    for i in range(joints):
        writer.write("/joint_states", "sensor_msgs/msg/JointState", joint_state(i), T0 + i * 10**7)
        if i < images:
            writer.write("/camera/color/image_raw", "sensor_msgs/msg/Image", image(i), T0 + i * 10**7 + 1)
    writer.write("/teleop/intervention", "meta_robot_interfaces/msg/Intervention", intervention(True), T0)


def counts_rosbags(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with AnyReader([folder], default_typestore=STORE) as reader:
        for connection, _, raw in reader.messages():
            reader.deserialize(raw, connection.msgtype)  # every message must decode
            counts[connection.topic] = counts.get(connection.topic, 0) + 1
    return counts


def counts_mcap(mcap_path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with open(mcap_path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _, channel, _, decoded in reader.iter_decoded_messages():
            assert decoded is not None
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
    return counts


def test_round_trip_reads_back_with_rosbags_and_mcap(tmp_path):
    meta = metadata(tmp_path)
    writer = EpisodeWriter(tmp_path, meta)
    assert (tmp_path / OPEN_DIR / meta.episode_id / "episode.yaml").is_file()
    opened = EpisodeMetadata.load(tmp_path / OPEN_DIR / meta.episode_id)
    assert (opened.complete, opened.outcome) == (False, "unknown")
    write_episode(writer)
    writer.intervention(True, T0 + 10**8, "spacemouse")
    writer.intervention(False, T0 + 3 * 10**8, "spacemouse")
    info = TYPES["sensor_msgs/msg/CameraInfo"](
        header=header(T0, "cam_optical"),
        height=48,
        width=64,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array([50.0, 0, 32, 0, 50, 24, 0, 0, 1]),
        r=np.eye(3).ravel(),
        p=np.zeros(12),
        binning_x=0,
        binning_y=0,
        roi=TYPES["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )
    path = writer.finish("success", T0 + 10**9, calibration={"camera": calibration_from_camera_info(info)})

    assert path == tmp_path / meta.episode_id and path.is_dir()
    assert not (tmp_path / OPEN_DIR / meta.episode_id).exists()
    expected = {"/joint_states": 50, "/camera/color/image_raw": 10, "/teleop/intervention": 1}
    assert counts_rosbags(path) == expected
    (mcap_file,) = path.glob("*.mcap")
    assert counts_mcap(mcap_file) == expected
    done = EpisodeMetadata.load(path)
    assert (done.complete, done.outcome, done.skill, done.arguments, done.seed) == (
        True,
        "success",
        "open_drawer",
        ["drawer_top"],
        7,
    )
    assert {t: i.count for t, i in done.topics.items()} == expected
    assert done.topics["/camera/color/image_raw"].type == "sensor_msgs/msg/Image"
    assert [(s.start_ns, s.end_ns, s.device) for s in done.interventions] == [
        (T0 + 10**8, T0 + 3 * 10**8, "spacemouse")
    ]
    assert done.calibration["camera"].k[0] == 50.0 and done.calibration["camera"].frame_id == "cam_optical"
    assert done.duration_s == pytest.approx(1.0)


def test_mcap_decodes_custom_message_fields(tmp_path):
    writer = EpisodeWriter(tmp_path, metadata(tmp_path))
    writer.write(
        "/teleop/intervention", "meta_robot_interfaces/msg/Intervention", intervention(True, "pad"), T0
    )
    path = writer.finish("failure", T0)
    (mcap_file,) = path.glob("*.mcap")
    with open(mcap_file, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        (decoded,) = [m for *_, m in reader.iter_decoded_messages()]
    assert (decoded.active, decoded.device, decoded.header.stamp.sec) == (True, "pad", T0 // 10**9)


def test_discard_deletes_the_open_episode(tmp_path):
    meta = metadata(tmp_path)
    writer = EpisodeWriter(tmp_path, meta)
    write_episode(writer, joints=5, images=1)
    writer.discard()
    assert not (tmp_path / OPEN_DIR / meta.episode_id).exists()
    assert not (tmp_path / meta.episode_id).exists()


def test_episode_ids_are_sequenced(tmp_path):
    first = EpisodeWriter(tmp_path, metadata(tmp_path, skill=""))
    second = EpisodeWriter(tmp_path, metadata(tmp_path, skill="pick place"))
    assert first.metadata.episode_id.endswith("-teleop-0001")
    assert second.metadata.episode_id.endswith("-pick_place-0002")
    first.finish("unknown", T0)
    second.discard()
    assert next_sequence(tmp_path) == 2


def test_chunks_are_flushed_to_the_file_while_open(tmp_path):
    writer = EpisodeWriter(tmp_path, metadata(tmp_path), options=WriterOptions(chunk_size=16 * 1024))
    write_episode(writer, joints=40, images=20)  # 20 images of 9 KiB: several chunks
    (mcap_file,) = writer.open_dir.glob("*.mcap")
    messages = list(read_tolerant(mcap_file))
    assert len(messages) > 0
    assert complete_length(mcap_file) == mcap_file.stat().st_size  # only whole records on disk
    writer.flush()
    assert len(list(read_tolerant(mcap_file))) == 61
    writer.discard()


def test_time_based_flush(tmp_path):
    now = [0.0]
    writer = EpisodeWriter(
        tmp_path, metadata(tmp_path), options=WriterOptions(flush_interval=0.5), clock=lambda: now[0]
    )
    writer.write("/joint_states", "sensor_msgs/msg/JointState", joint_state(0), T0)
    (mcap_file,) = writer.open_dir.glob("*.mcap")
    writer.flush_if_due()
    assert list(read_tolerant(mcap_file)) == []
    now[0] = 0.6
    writer.flush_if_due()
    assert len(list(read_tolerant(mcap_file))) == 1
    writer.discard()


def crash_copy(writer: EpisodeWriter, root: Path, cut: int) -> Path:
    """What a SIGKILLed recorder leaves: the open folder as it is now, minus ``cut`` trailing bytes."""
    crashed = root / OPEN_DIR / writer.metadata.episode_id
    shutil.copytree(writer.open_dir, crashed)
    (mcap_file,) = crashed.glob("*.mcap")
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) - cut])
    return crashed


def test_recovers_a_truncated_episode(tmp_path):
    source = tmp_path / "source"
    root = tmp_path / "episodes"
    writer = EpisodeWriter(source, metadata(source), options=WriterOptions(chunk_size=8 * 1024))
    write_episode(writer, joints=60, images=12)
    writer.intervention(True, T0 + 5 * 10**7, "spacemouse")  # still open at the crash
    writer.flush()
    (mcap_file,) = writer.open_dir.glob("*.mcap")
    before = mcap_file.stat().st_size
    write_episode(writer, joints=5, images=0)
    writer.flush()  # written, but the crash cuts this last chunk in half
    crashed = crash_copy(writer, root, cut=(mcap_file.stat().st_size - before) // 2)
    writer.discard()
    episode_id = crashed.name

    recovered = recover_open_episodes(root)

    assert [r.episode_id for r in recovered] == [episode_id]
    result = recovered[0]
    assert result.messages == 60 + 12 + 1 and result.truncated_bytes > 0
    assert not crashed.exists() and not (root / OPEN_DIR / episode_id).exists()
    counts = {"/joint_states": 60, "/camera/color/image_raw": 12, "/teleop/intervention": 1}
    assert counts_rosbags(result.path) == counts
    (mcap_file,) = result.path.glob("*.mcap")
    assert counts_mcap(mcap_file) == counts
    meta = EpisodeMetadata.load(result.path)
    assert (meta.outcome, meta.complete, meta.skill) == ("unknown", False, "open_drawer")
    assert "recovered after crash: 73 messages" in meta.notes
    assert meta.interventions[0].end_ns == result.last_time_ns == meta.end_time_ns
    assert recover_open_episodes(root) == []


def test_recovery_of_an_episode_with_no_complete_chunk(tmp_path):
    writer = EpisodeWriter(tmp_path, metadata(tmp_path))
    writer.write("/joint_states", "sensor_msgs/msg/JointState", joint_state(0), T0)  # still in memory
    (recovered,) = recover_open_episodes(tmp_path)
    assert recovered.messages == 0
    assert counts_rosbags(recovered.path) == {}
    writer._bag.abort()


def test_disk_guard_refuses_with_a_clear_message(tmp_path):
    free = [10 * GIB]
    guard = DiskGuard(int(2 * GIB), 0.05, usage=lambda _: DiskUsage(free=free[0], total=100 * GIB))
    guard.check(tmp_path)
    free[0] = int(4.5 * GIB)  # more than 2 GiB but less than 5 % of 100 GiB
    with pytest.raises(DiskSpaceError) as error:
        guard.check(tmp_path)
    message = str(error.value)
    assert "4.50 GiB free" in message and str(tmp_path) in message and "min_free_space_gb" in message


def test_recorder_refuses_to_open_and_stops_when_disk_fills(tmp_path):
    free = [10 * GIB]
    guard = DiskGuard(int(2 * GIB), usage=lambda _: DiskUsage(free=free[0], total=100 * GIB))
    stops: list[str] = []
    recorder = EpisodeRecorder(tmp_path, guard=guard, disk_check_period=0.05, on_auto_stop=stops.append)
    try:
        recorder.open(metadata(tmp_path))
        assert recorder.submit("/joint_states", "sensor_msgs/msg/JointState", joint_state(0), T0)
        free[0] = GIB
        deadline = time.monotonic() + 10
        while not stops:
            assert time.monotonic() < deadline, "the recorder kept recording on a full disk"
            time.sleep(0.02)
        assert "GiB free" in stops[0] and not recorder.recording
        status = recorder.status()
        finished = EpisodeMetadata.load(Path(status.last_path))
        assert (finished.outcome, finished.complete) == ("unknown", True)
        assert "stopped early" in finished.notes
        with pytest.raises(DiskSpaceError):
            recorder.open(metadata(tmp_path))
    finally:
        recorder.close(T0)


def test_recorder_counts_and_drops(tmp_path):
    recorder = EpisodeRecorder(tmp_path, max_queue_bytes=4096)
    try:
        assert not recorder.submit("/joint_states", "sensor_msgs/msg/JointState", joint_state(0), T0)
        recorder.open(metadata(tmp_path))
        big = image(0, 64, 48)  # 9 KiB: never fits a 4 KiB queue
        assert not recorder.submit("/camera/color/image_raw", "sensor_msgs/msg/Image", big, T0)
        for i in range(20):
            assert recorder.submit("/joint_states", "sensor_msgs/msg/JointState", joint_state(i), T0 + i)
        recorder.intervention(True, T0 + 5, "pad")
        path = recorder.finish("success", T0 + 100)
        assert not recorder.submit("/joint_states", "sensor_msgs/msg/JointState", joint_state(0), T0)
    finally:
        recorder.close(T0)
    meta = EpisodeMetadata.load(path)
    assert meta.topics["/joint_states"].count == 20
    assert (meta.topics["/camera/color/image_raw"].count, meta.topics["/camera/color/image_raw"].dropped) == (
        0,
        1,
    )
    assert [(s.start_ns, s.end_ns) for s in meta.interventions] == [(T0 + 5, T0 + 100)]
    assert counts_rosbags(path) == {"/joint_states": 20}
    assert recorder.status().episodes_completed == 1


def test_recorder_close_finalises_an_open_episode(tmp_path):
    recorder = EpisodeRecorder(tmp_path)
    recorder.open(metadata(tmp_path))
    recorder.submit("/joint_states", "sensor_msgs/msg/JointState", joint_state(0), T0)
    path = recorder.close(T0 + 10)
    assert path is not None
    meta = EpisodeMetadata.load(path)
    assert (meta.outcome, meta.complete, meta.topics["/joint_states"].count) == ("unknown", True, 1)
    with pytest.raises(RuntimeError):
        recorder.open(metadata(tmp_path))


def test_metadata_refuses_bad_outcome_and_format(tmp_path):
    with pytest.raises(ValueError):
        EpisodeMetadata(episode_id="x", outcome="maybe")
    with pytest.raises(ValueError):
        EpisodeMetadata.from_dict({"format": "other", "episode_id": "x"})
