"""The RealSense path without a camera: a software-device recording played back by the real node.

The recording holds frames of known content (frame index in the blue channel, a depth ramp) and
known intrinsics. The node runs as a separate process over DDS; the test process subscribes like
perception would and checks images and camera_info against what was recorded.

This process never imports pyrealsense2: its wheel embeds another Fast DDS, and a process holding
both it and rclpy may crash at exit. Whatever needs librealsense runs in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from meta_robot.camera.frames import CameraIntrinsics
from meta_robot.camera.synthetic_recording import (
    decode_frame_index,
    synthetic_color,
    synthetic_depth,
    synthetic_intrinsics,
)
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.camera_messages import color_from_msg, depth_from_msg, intrinsics_from_msg
from meta_robot.ros.camera_publisher import IMAGE_QOS
from meta_robot.ros.environment import loopback_environment
from meta_robot.ros.launcher import terminate

pytestmark = pytest.mark.integration

WIDTH, HEIGHT, FPS, FRAMES = 64, 48, 30, 30
NODE = [sys.executable, "-m", "meta_robot.nodes.realsense_camera_node", "--ros-args"]
# rs.align resamples depth pixel by pixel; on an identity mapping a pixel may take its neighbour's
# value (the ramp steps 2 mm per column, 1 mm per row) or stay empty at a few borders.
ALIGN_TOLERANCE_MM = 3
STARTUP_S = 60.0  # generous: first start of rclpy + librealsense on a loaded 2-core CI machine


# Reads a recording with RealSenseCamera in a child process; prints the frame indices seen.
PLAY_ALL = """
import json, sys
from meta_robot.camera.realsense import EndOfRecording, RealSenseCamera, RealSenseConfig
from meta_robot.camera.synthetic_recording import decode_frame_index
config = RealSenseConfig(playback_file=sys.argv[1], width=0, height=0, fps=0, repeat_playback=False)
seen = []
with RealSenseCamera(config) as camera:
    try:
        while True:
            seen.append(decode_frame_index(camera.read().color))
    except EndOfRecording:
        pass
    k = camera.intrinsics
print(json.dumps({"seen": seen, "k": [k.width, k.height, k.fx, k.fy, k.cx, k.cy]}))
"""


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=loopback_environment(), capture_output=True, text=True, timeout=STARTUP_S)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, CameraIntrinsics]:
    path = tmp_path_factory.mktemp("realsense") / "synthetic.db3"
    cmd = [sys.executable, "-m", "meta_robot.camera.synthetic_recording", str(path)]
    cmd += ["--width", str(WIDTH), "--height", str(HEIGHT), "--fps", str(FPS)]
    result = _run([*cmd, "--frames", str(FRAMES)])
    assert result.returncode == 0 and path.is_file(), result.stderr
    return path, synthetic_intrinsics(WIDTH, HEIGHT)


def _start(params: dict[str, object], namespace: str = "") -> subprocess.Popen:
    cmd = list(NODE)
    for name, value in params.items():
        cmd += ["-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}"]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    return subprocess.Popen(
        cmd,
        env=loopback_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen) -> str:
    terminate(proc, timeout=15)
    return proc.stdout.read() if proc.stdout else ""


@pytest.fixture(scope="module")
def camera_node(recording) -> Iterator[subprocess.Popen]:
    path, _ = recording
    proc = _start(
        {
            "playback_file": path,
            "width": WIDTH,
            "height": HEIGHT,
            "fps": FPS,
            "repeat_playback": True,
        },
        namespace="/rs_test",
    )
    try:
        yield proc
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def ros() -> Iterator[BackgroundNode]:
    with BackgroundNode("realsense_test_subscriber") as background:
        yield background


def _collect(ros: BackgroundNode, proc: subprocess.Popen, wanted: dict[str, type], count: int):
    """Messages on each topic in ``wanted`` until every topic has ``count`` of them."""
    received: dict[str, list] = {topic: [] for topic in wanted}
    done = threading.Event()
    lock = threading.Lock()

    def callback(topic: str):
        def on_msg(msg) -> None:
            with lock:
                received[topic].append(msg)
                if all(len(v) >= count for v in received.values()):
                    done.set()

        return on_msg

    subs = [
        ros.node.create_subscription(msg_type, topic, callback(topic), IMAGE_QOS)
        for topic, msg_type in wanted.items()
    ]
    try:
        deadline = time.monotonic() + STARTUP_S
        while not done.wait(0.2):
            if proc.poll() is not None:
                pytest.fail(f"camera node exited with {proc.returncode}:\n{_stop(proc)}")
            if time.monotonic() > deadline:
                pytest.fail(f"not enough messages: { {t: len(v) for t, v in received.items()} }")
    finally:
        for sub in subs:
            ros.node.destroy_subscription(sub)
    with lock:
        return {topic: list(msgs) for topic, msgs in received.items()}


def _stamp(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def test_published_images_match_the_recording(ros, camera_node):
    msgs = _collect(
        ros,
        camera_node,
        {
            "/rs_test/camera/color/image_raw": Image,
            "/rs_test/camera/aligned_depth_to_color/image_raw": Image,
        },
        count=10,
    )
    colors = msgs["/rs_test/camera/color/image_raw"]
    depths = {_stamp(m): m for m in msgs["/rs_test/camera/aligned_depth_to_color/image_raw"]}
    matched = 0
    for color_msg in colors:
        assert color_msg.header.frame_id == "camera_color_optical_frame"
        color = color_from_msg(color_msg)
        index = decode_frame_index(color)
        assert index < FRAMES
        assert np.array_equal(color, synthetic_color(index, WIDTH, HEIGHT)), f"frame {index}"
        depth_msg = depths.get(_stamp(color_msg))
        if depth_msg is None:
            continue  # its depth twin arrived before we subscribed, or after we stopped
        matched += 1
        assert depth_msg.header.frame_id == color_msg.header.frame_id
        depth = depth_from_msg(depth_msg).astype(int)
        expected = synthetic_depth(index, WIDTH, HEIGHT).astype(int)
        valid = depth > 0
        assert valid.mean() > 0.9, f"frame {index}: only {valid.mean():.0%} of depth pixels set"
        assert np.abs(depth - expected)[valid].max() <= ALIGN_TOLERANCE_MM, f"frame {index}"
    assert matched >= 5, "colour and depth of a frame must share one stamp"


def test_camera_info_matches_the_recorded_intrinsics(ros, camera_node, recording):
    _, intrinsics = recording
    topics = {
        "/rs_test/camera/color/camera_info": CameraInfo,
        "/rs_test/camera/aligned_depth_to_color/camera_info": CameraInfo,
    }
    msgs = _collect(ros, camera_node, topics, count=2)
    for topic in topics:
        info = msgs[topic][-1]
        got = intrinsics_from_msg(info)
        assert (got.width, got.height) == (WIDTH, HEIGHT)
        # librealsense stores intrinsics as float32
        np.testing.assert_allclose(
            [got.fx, got.fy, got.cx, got.cy],
            [intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy],
            rtol=1e-6,
        )
        assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
        assert info.header.frame_id == "camera_color_optical_frame"


def test_camera_source_plays_every_recorded_frame(recording):
    path, k = recording
    result = _run([sys.executable, "-c", PLAY_ALL, str(path)])
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["k"], [WIDTH, HEIGHT, k.fx, k.fy, k.cx, k.cy], rtol=1e-6)
    seen = out["seen"]
    # in order, none twice, to the last; the syncer may drop the first frame or two
    assert seen == sorted(set(seen)) and seen[-1] == FRAMES - 1 and len(seen) >= FRAMES - 2


def test_missing_recording_is_a_clear_error_exit(tmp_path):
    missing = tmp_path / "no_such_recording.db3"
    proc = _start({"playback_file": missing})
    try:
        proc.wait(timeout=STARTUP_S)
    finally:
        output = _stop(proc)
    assert proc.returncode == 2, output
    assert f"RealSense recording not found: {missing}" in output


def test_unsupported_resolution_lists_what_the_recording_offers(recording):
    path, _ = recording
    proc = _start({"playback_file": path, "width": 640, "height": 480})
    try:
        proc.wait(timeout=STARTUP_S)
    finally:
        output = _stop(proc)
    assert proc.returncode == 2, output
    assert "does not offer colour + depth 640x480@30" in output
    assert f"color {WIDTH}x{HEIGHT}@{FPS} rgb8" in output


def test_no_camera_is_a_clear_error_exit():
    count = _run([sys.executable, "-c", "import pyrealsense2 as rs; print(len(rs.context().devices))"])
    if count.stdout.strip() != "0":
        pytest.skip(f"a RealSense camera is connected (or librealsense failed: {count.stderr})")
    proc = _start({})
    try:
        proc.wait(timeout=STARTUP_S)
    finally:
        output = _stop(proc)
    assert proc.returncode == 2, output
    assert "no RealSense camera with any serial connected" in output
