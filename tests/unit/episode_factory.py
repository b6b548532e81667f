"""Small, real episodes for the dataset tests: rosbag2 folders (MCAP) written with rosbags' Writer
from serialized ROS messages, plus an ``episode.yaml`` written by the recorder's own metadata class.

The streams are deterministic functions of time so tests can check alignment: joint i is at
``0.1 * i + t``, the TCP is at ``x = 0.4 + 0.01 * t``, the command target is at ``x = 0.5 + 0.01 * k``
for command k, and every camera image is filled with its frame number (front) or 255 minus it
(wrist).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from meta_robot.recording.episode import EpisodeMetadata, InterventionSpan, TopicInfo
from meta_robot.recording.typestore import typestore

START_NS = 1_000_000_000_000  # ROS time of the first message of every episode
JOINT_RATE = 50.0  # Hz
CAMERA_RATE = 15.0  # Hz
COMMAND_RATE = 20.0  # Hz
FIRST_COMMAND_S = 0.3  # s after the start: steps before it are not part of the resampled episode

TYPES = {
    "/joint_states": "sensor_msgs/msg/JointState",
    "/ee_pose": "geometry_msgs/msg/PoseStamped",
    "/gripper/state": "meta_robot_interfaces/msg/GripperState",
    "/robot_command": "meta_robot_interfaces/msg/ArmCommand",
    "/camera/color/image_raw": "sensor_msgs/msg/Image",
    "/wrist_camera/color/image_raw": "sensor_msgs/msg/Image",
    "/teleop/intervention": "meta_robot_interfaces/msg/Intervention",
}


def _stamp(ns: int):
    t = typestore().types["builtin_interfaces/msg/Time"]
    return t(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _header(ns: int, frame: str = "base"):
    return typestore().types["std_msgs/msg/Header"](stamp=_stamp(ns), frame_id=frame)


def _pose(x: float, y: float, z: float, q=(1.0, 0.0, 0.0, 0.0)):
    types = typestore().types
    return types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=x, y=y, z=z),
        orientation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
    )


def _image(ns: int, value: int, size: tuple[int, int]):
    h, w = size
    data = np.full((h, w, 3), value % 256, dtype=np.uint8)
    data[:, :, 1] = (value * 7) % 256  # a second channel that differs, to catch channel mix-ups
    return typestore().types["sensor_msgs/msg/Image"](
        header=_header(ns, "camera"),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=w * 3,
        data=data.reshape(-1),
    )


def write_episode(
    root: Path,
    episode_id: str,
    skill: str = "pick",
    arguments: tuple[str, ...] = ("red_cube",),
    outcome: str = "success",
    duration_s: float = 2.0,
    image_size: tuple[int, int] = (32, 32),
    interventions: tuple[tuple[float, float], ...] = (),
    start_ns: int = START_NS,
) -> Path:
    """Write ``<root>/<episode_id>/`` and return its path. ``interventions`` are (start, end) in s."""
    ts = typestore()
    types = ts.types
    folder = Path(root) / episode_id
    messages: list[tuple[int, str, object]] = []
    names = [f"fr3_joint{i + 1}" for i in range(7)]
    end_ns = start_ns + int(duration_s * 1e9)

    def at(rate: float, offset: float = 0.0):
        k = 0
        while (t := offset + k / rate) <= duration_s + 1e-9:
            yield k, t, start_ns + round(t * 1e9)
            k += 1

    for _k, t, ns in at(JOINT_RATE):
        joints = types["sensor_msgs/msg/JointState"](
            header=_header(ns),
            name=names,
            position=np.array([0.1 * i + t for i in range(7)]),
            velocity=np.zeros(7),
            effort=np.zeros(7),
        )
        messages.append((ns, "/joint_states", joints))
        pose = types["geometry_msgs/msg/PoseStamped"](
            header=_header(ns), pose=_pose(0.4 + 0.01 * t, 0.0, 0.3)
        )
        messages.append((ns, "/ee_pose", pose))
        gripper = types["meta_robot_interfaces/msg/GripperState"](
            header=_header(ns), width=0.08 - 0.01 * t, max_width=0.08, grasped=False
        )
        messages.append((ns, "/gripper/state", gripper))
    for k, _t, ns in at(CAMERA_RATE):
        messages.append((ns + 1000, "/camera/color/image_raw", _image(ns, k, image_size)))
        messages.append((ns + 2000, "/wrist_camera/color/image_raw", _image(ns, 255 - k, image_size)))
    for k, _t, ns in at(COMMAND_RATE, FIRST_COMMAND_S):
        command = types["meta_robot_interfaces/msg/ArmCommand"](
            header=_header(ns),
            mode=0,
            pose=_pose(0.5 + 0.01 * k, 0.1, 0.2),
            gripper_width=0.04,
            source="test",
        )
        messages.append((ns, "/robot_command", command))
    spans = []
    for begin, end in interventions:
        for active, t in ((True, begin), (False, end)):
            ns = start_ns + round(t * 1e9)
            msg = types["meta_robot_interfaces/msg/Intervention"](
                header=_header(ns), active=active, device="keyboard", reason="test"
            )
            messages.append((ns, "/teleop/intervention", msg))
        spans.append(InterventionSpan(start_ns + round(begin * 1e9), start_ns + round(end * 1e9), "keyboard"))

    messages.sort(key=lambda m: m[0])
    counts: dict[str, int] = {}
    with Writer(folder, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=ts) for topic, msgtype in TYPES.items()
        }
        for ns, topic, msg in messages:
            writer.write(connections[topic], ns, ts.serialize_cdr(msg, TYPES[topic]))
            counts[topic] = counts.get(topic, 0) + 1
    EpisodeMetadata(
        episode_id=episode_id,
        task=" ".join((skill, *arguments)),
        skill=skill,
        arguments=list(arguments),
        seed=3,
        operator="scripted",
        outcome=outcome,
        complete=True,
        start_time_ns=start_ns,
        end_time_ns=end_ns,
        interventions=spans,
        topics={topic: TopicInfo(type=TYPES[topic], count=n) for topic, n in counts.items()},
    ).save(folder)
    return folder


def write_dataset(root: Path, image_size: tuple[int, int] = (32, 32)) -> list[Path]:
    """Three episodes: two ``pick`` (one success, one failure with an intervention), one ``open``."""
    return [
        write_episode(root, "20250101-120000-pick-0001", "pick", ("red_cube",), "success", 2.0, image_size),
        write_episode(
            root,
            "20250101-120010-pick-0002",
            "pick",
            ("blue_cube",),
            "failure",
            1.5,
            image_size,
            interventions=((0.6, 0.9),),
            start_ns=START_NS + 10_000_000_000,
        ),
        write_episode(
            root,
            "20250101-120020-open-0003",
            "open",
            ("drawer",),
            "success",
            1.0,
            image_size,
            start_ns=START_NS + 20_000_000_000,
        ),
    ]
