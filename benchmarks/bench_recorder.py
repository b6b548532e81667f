"""Recorder throughput: two 640x480 rgb8 cameras at 30 Hz plus joint_states at 500 Hz, recorded to disk.

    .venv/bin/python benchmarks/bench_recorder.py [--duration 20] [--out DIR] [--keep] [--param k:=v ...]

Three processes, as on the robot: the recorder node (started like ``meta-robot up`` starts it), a
publisher process, and this one, which opens an episode through ``recorder/start_episode``, waits for
the publisher, closes the episode and reads its ``episode.yaml``. Prints messages published vs written
vs dropped (writer queue full) per topic, sustained throughput, and the recorder process's CPU use
(its whole process group, from /proc, or psutil where installed). Exits 0 unless something failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from meta_robot.ros.environment import apply_loopback_environment

CAMERAS = ("camera/color/image_raw", "wrist_camera/color/image_raw")
JOINTS = "joint_states"
WIDTH, HEIGHT = 640, 480
CAMERA_RATE, JOINT_RATE = 30.0, 500.0
# A namespace of its own keeps a neighbour's graph on the same DDS domain out of the measurement.
NAMESPACE = os.environ.get("BENCH_RECORDER_NAMESPACE") or f"bench_recorder_{os.getpid()}"


def publish(duration: float) -> None:
    """Child process: wait for the recorder's subscriptions, publish for ``duration`` s, print counts."""
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState

    from meta_robot.ros.camera_publisher import IMAGE_QOS

    rclpy.init()
    node = rclpy.create_node("bench_recorder_publisher", namespace=NAMESPACE)
    try:
        cams = {t: node.create_publisher(Image, t, IMAGE_QOS) for t in CAMERAS}
        joints = node.create_publisher(
            JointState, JOINTS, QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        )
        deadline = time.monotonic() + 60
        while min(p.get_subscription_count() for p in [*cams.values(), joints]) < 1:
            if time.monotonic() > deadline:
                raise SystemExit("the recorder never subscribed")
            time.sleep(0.05)
        time.sleep(0.5)
        pixels = np.random.default_rng(0).integers(0, 255, WIDTH * HEIGHT * 3, dtype=np.uint8)
        image = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3)
        image.data = pixels.tobytes()
        joint = JointState(
            name=[f"fr3_joint{i}" for i in range(1, 8)], position=[0.0] * 7, velocity=[0.0] * 7
        )
        counts = {t: 0 for t in (*CAMERAS, JOINTS)}
        print("publishing", flush=True)
        start = time.monotonic()
        next_joint = next_camera = start
        while (now := time.monotonic()) < start + duration:
            if now >= next_camera:
                next_camera += 1.0 / CAMERA_RATE
                stamp = node.get_clock().now().to_msg()
                for topic, pub in cams.items():
                    image.header.stamp = stamp
                    pub.publish(image)
                    counts[topic] += 1
            if now >= next_joint:
                next_joint += 1.0 / JOINT_RATE
                joint.header.stamp = node.get_clock().now().to_msg()
                joint.position[0] = now - start
                joints.publish(joint)
                counts[JOINTS] += 1
            time.sleep(max(0.0, min(next_joint, next_camera) - time.monotonic()))
        elapsed = time.monotonic() - start
        time.sleep(0.5)  # let reliable deliveries finish before the process goes away
        print(json.dumps({"counts": counts, "elapsed": elapsed}), flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every live process in process group ``pgid``."""
    try:
        import psutil  # type: ignore[import-not-found]

        return sum(
            sum(p.cpu_times()[:2]) for p in psutil.process_iter() if _pgid(p.pid) == pgid
        )  # pragma: no cover - psutil is optional
    except ImportError:
        pass
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(11) stime(12)
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


def run(duration: float, out: Path, overrides: dict[str, object]) -> int:
    """Parent: recorder + publisher processes, one episode, a table of figures."""
    from meta_robot_interfaces.srv import StartEpisode, StopEpisode

    from meta_robot.recording.episode import EpisodeMetadata
    from meta_robot.ros.background import BackgroundNode
    from meta_robot.ros.graph import NodeSpec
    from meta_robot.ros.launcher import GraphProcesses

    spec = NodeSpec(
        name="recorder",
        executable="recorder",
        module="meta_robot.nodes.recorder_node",
        params_files=("recorder.yaml",),
        parameters={
            "output_dir": str(out / "episodes"),
            "min_free_space_gb": 1.0,
            "min_free_fraction": 0.0,
            **overrides,
        },
        namespace=NAMESPACE,
    )
    os.environ["BENCH_RECORDER_NAMESPACE"] = NAMESPACE  # the publisher process joins it
    with (
        GraphProcesses([spec], os.environ, log_dir=out / "logs") as graph,
        BackgroundNode("bench_recorder", namespace=NAMESPACE) as ros,
    ):
        start = ros.node.create_client(StartEpisode, "recorder/start_episode")
        stop = ros.node.create_client(StopEpisode, "recorder/stop_episode")
        if not (start.wait_for_service(timeout_sec=60) and stop.wait_for_service(timeout_sec=10)):
            graph.check_running()
            raise SystemExit("the recorder's services never appeared")

        def call(client, request):
            future = client.call_async(request)
            deadline = time.monotonic() + 120
            while not future.done():
                if time.monotonic() > deadline:
                    raise SystemExit(f"no answer from {client.srv_name}")
                time.sleep(0.01)
            return future.result()

        response = call(
            start, StartEpisode.Request(task="benchmark", skill="bench", seed=-1, operator_name="bench")
        )
        if not response.success:
            raise SystemExit(response.message)
        publisher = subprocess.Popen(
            [sys.executable, __file__, "--publish", "--duration", str(duration)],
            env=os.environ,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert publisher.stdout is not None
        ready = publisher.stdout.readline()  # "publishing": the measured window starts
        if not ready:
            raise SystemExit(f"publisher failed with code {publisher.wait()}")
        pgid = graph.processes[spec.full_name].pid
        cpu0, wall0 = group_cpu_seconds(pgid), time.monotonic()
        output, _ = publisher.communicate(timeout=duration + 120)
        cpu1, wall1 = group_cpu_seconds(pgid), time.monotonic()
        if publisher.returncode != 0:
            raise SystemExit(f"publisher failed with code {publisher.returncode}")
        result = call(
            stop, StopEpisode.Request(outcome=StopEpisode.Request.OUTCOME_UNKNOWN, notes="benchmark")
        )
        if not result.success:
            raise SystemExit(result.message)
        graph.check_running()

    published = json.loads(output.strip().splitlines()[-1])
    meta = EpisodeMetadata.load(Path(result.path))
    elapsed = float(published["elapsed"])
    size = sum(p.stat().st_size for p in Path(result.path).glob("*.mcap"))
    written_total = sum(i.count for i in meta.topics.values())
    print(
        f"recorder benchmark: {duration:g} s, 2 x {WIDTH}x{HEIGHT} rgb8 @ {CAMERA_RATE:g} Hz + {JOINTS} @ "
        f"{JOINT_RATE:g} Hz, {os.cpu_count()} CPUs"
    )
    print(f"{'topic':<32}{'published':>10}{'written':>10}{'dropped':>9}{'lost (DDS)':>12}")
    for topic, sent in published["counts"].items():
        info = meta.topics.get(f"/{NAMESPACE}/{topic}")
        written, dropped = (info.count, info.dropped) if info else (0, 0)
        print(f"{topic:<32}{sent:>10}{written:>10}{dropped:>9}{sent - written - dropped:>12}")
    rate_mb, rate_msgs = size / elapsed / 1e6, written_total / elapsed
    print(f"{'sustained throughput':<32}{rate_mb:>10.1f} MB/s {rate_msgs:>10.0f} msgs/s")
    print(
        f"{'episode on disk':<32}{size / 1e6:>10.1f} MB in {meta.duration_s:.1f} s ({Path(result.path).name})"
    )
    cpu = (cpu1 - cpu0) / max(wall1 - wall0, 1e-9)
    print(f"{'recorder CPU (process group)':<32}{100 * cpu:>10.0f} % of one core")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="s of publishing (default 20)")
    parser.add_argument("--out", type=Path, help="folder for the episode and logs (default: a temp dir)")
    parser.add_argument(
        "--param", action="append", default=[], help="recorder parameter, e.g. queue_depth:=50"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    apply_loopback_environment()
    if args.publish:
        publish(args.duration)
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_recorder_"))
    try:
        overrides = {k: yaml.safe_load(v) for k, _, v in (p.partition(":=") for p in args.param)}
        code = run(args.duration, out, overrides)
    finally:
        if args.out is None and not args.keep:
            shutil.rmtree(out, ignore_errors=True)
        elif args.out is None:
            print(f"kept {out}")
    sys.exit(code)


if __name__ == "__main__":
    main()
