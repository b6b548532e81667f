"""Camera -> subscriber image latency over DDS, publisher and subscriber in separate processes.

    .venv/bin/python benchmarks/bench_image_latency.py [--frames 300] [--rate 30]
        [--sizes 128x128,640x480] [--profile shm|default] [--reliability reliable|best_effort]
        [--plot out/image_latency.png]

A child process publishes rgb8 frames through :class:`CameraPublisher` (the RealSense node's and
the sim bridge's path) at ``--rate``; each frame is stamped with the wall clock just before it is
converted and published, and carries its sequence number in its first pixels. This process
subscribes and records receive time - header stamp (same machine clock; conversion, DDS transport
and deserialisation included) and which sequence numbers never arrived. ``--profile default``
drops config/fastdds.xml (shared memory) from both processes to compare with stock Fast DDS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from meta_robot.ros.environment import loopback_environment

TOPIC = "bench/camera"
SEQ_BYTES = 4  # sequence number stored in the first 4 bytes of the image (little-endian uint32)


def _qos(reliability: str) -> QoSProfile:
    from meta_robot.ros.camera_publisher import IMAGE_QOS

    policy = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
    return QoSProfile(
        history=IMAGE_QOS.history,
        depth=IMAGE_QOS.depth,
        durability=IMAGE_QOS.durability,
        reliability=policy[reliability],
    )


def publish(width: int, height: int, frames: int, rate: float, reliability: str) -> None:
    """Child process: wait for the subscriber, then publish ``frames`` frames at ``rate``."""
    import rclpy

    from meta_robot.camera.frames import CameraFrame
    from meta_robot.camera.synthetic_recording import synthetic_color, synthetic_intrinsics
    from meta_robot.ros.arm_messages import seconds_to_stamp
    from meta_robot.ros.camera_publisher import CameraPublisher

    intrinsics = synthetic_intrinsics(width, height)
    base = synthetic_color(0, width, height)
    rclpy.init()
    node = rclpy.create_node("image_latency_publisher")  # publishes only: nothing to spin
    try:
        camera = CameraPublisher(node, TOPIC, "bench_optical_frame", qos=_qos(reliability))
        deadline = time.monotonic() + 30.0
        while camera.color.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise SystemExit("publisher: no subscriber within 30 s")
            time.sleep(0.05)
        time.sleep(0.5)  # let discovery finish on both sides before the first sample
        start = time.monotonic()
        for seq in range(frames):
            time.sleep(max(0.0, start + seq / rate - time.monotonic()))
            color = base.copy()
            color.reshape(-1)[:SEQ_BYTES] = np.frombuffer(np.uint32(seq).tobytes(), np.uint8)
            stamp = time.time()  # "capture": the latency clock starts before conversion
            frame = CameraFrame(stamp, color, None, intrinsics)
            camera.publish(frame, seconds_to_stamp(stamp))
        time.sleep(1.0)  # let the last samples (and any retransmissions) arrive
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def measure(
    width: int, height: int, frames: int, rate: float, reliability: str, env: dict[str, str]
) -> tuple[np.ndarray, int]:
    """Latencies (s) of the frames received and the number lost, for one image size."""
    from meta_robot.ros.background import BackgroundNode

    latencies: dict[int, float] = {}
    lock = threading.Lock()

    def on_image(msg: Image) -> None:
        now = time.time()
        seq = int(np.frombuffer(bytes(msg.data[:SEQ_BYTES]), np.uint32)[0])
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with lock:
            latencies.setdefault(seq, now - stamp)

    cmd = [sys.executable, __file__, "--publish", f"{width}x{height}", "--frames", str(frames)]
    cmd += ["--rate", str(rate), "--reliability", reliability]
    with BackgroundNode("image_latency_subscriber") as ros:
        ros.node.create_subscription(Image, f"{TOPIC}/color/image_raw", on_image, _qos(reliability))
        child = subprocess.Popen(cmd, env=env)
        try:
            child.wait(timeout=60 + 2 * frames / rate)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        if child.returncode != 0:  # after its last frame: the samples still count
            print(f"warning: publisher exited with {child.returncode}", file=sys.stderr)
    with lock:
        values = np.array([latencies[s] for s in sorted(latencies) if s < frames])
    return values, frames - len(values)


def main() -> None:
    """Parse arguments; run the publisher (child mode) or the whole benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per image size")
    parser.add_argument("--rate", type=float, default=30.0, help="Hz")
    parser.add_argument("--sizes", default="128x128,640x480", help="WxH,WxH,...")
    parser.add_argument("--profile", choices=("shm", "default"), default="shm")
    parser.add_argument("--reliability", choices=("reliable", "best_effort"), default="reliable")
    parser.add_argument("--plot", type=Path, help="write a latency histogram PNG here")
    parser.add_argument("--publish", help=argparse.SUPPRESS)  # child mode: WxH
    args = parser.parse_args()
    if args.publish:
        width, height = (int(v) for v in args.publish.split("x"))
        publish(width, height, args.frames, args.rate, args.reliability)
        return

    env = loopback_environment()
    if args.profile == "default":
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    os.environ.clear()
    os.environ.update(env)  # before rclpy.init(): this process and the publisher alike
    results: dict[str, tuple[np.ndarray, int]] = {}
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        results[size] = measure(width, height, args.frames, args.rate, args.reliability, env)

    print(
        f"image latency, camera -> subscriber over DDS: rgb8 at {args.rate:g} Hz, "
        f"{args.frames} frames per size, Fast DDS profile '{args.profile}', {args.reliability}"
    )
    print(f"{'size':>9} {'received':>8} {'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for size, (values, lost) in results.items():
        if len(values):
            p50, p99 = np.percentile(values, [50, 99]) * 1e3
            peak = values.max() * 1e3
        else:
            p50 = p99 = peak = float("nan")
        print(f"{size:>9} {len(values):>8} {lost:>5} {p50:7.2f} {p99:7.2f} {peak:7.2f}")
    if args.plot:
        plot({size: values for size, (values, _) in results.items()}, args.plot, args)


def plot(latencies: dict[str, np.ndarray], path: Path, args: argparse.Namespace) -> None:
    """Histogram of the latencies of each image size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for size, values in latencies.items():
        ax.hist(values * 1e3, bins=60, alpha=0.6, label=f"{size} rgb8")
    ax.set_xlabel("latency, ms (receive time - header stamp)")
    ax.set_ylabel("frames")
    ax.set_title(f"camera -> subscriber, {args.rate:g} Hz, {args.profile}, {args.reliability}")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"histogram written to {path}")


if __name__ == "__main__":
    main()
