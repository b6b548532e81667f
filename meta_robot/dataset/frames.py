"""Resample an episode's streams into fixed-rate steps (observation, action) for learning.

Every stream is sampled "latest value at or before the step time" (a zero-order hold, what a policy
running at that rate would have seen). The step's action is the command target the arm was asked to
reach during the step: the last robot command issued before the next step begins. Steps start at
the first command (before it nobody was acting) and need every stream to have spoken at least once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from meta_robot.camera.image_decoding import color_from_msg
from meta_robot.core.geometry import quat_multiply, quat_normalize

# The schema's names the dataset's users read from this module (CAMERAS, NUM_JOINTS too) stay here.
from meta_robot.core.observation import ACTION_NAMES as ACTION_NAMES
from meta_robot.core.observation import (
    CAMERAS,
    CONTROL_RATE,
    NUM_JOINTS,
    STATE_DIM,
    color_topic,
    state_vector,
)
from meta_robot.core.observation import STATE_NAMES as STATE_NAMES
from meta_robot.dataset.episodes import Episode, EpisodeError, deserialize, read_messages

DEFAULT_FPS = CONTROL_RATE  # a dataset step is a control step of the policy trained on it
decode_image = color_from_msg  # the one image decoder, under the name the dataset's users know

# Bag topic names of each stream (absolute names as recorded).
DEFAULT_TOPICS: Mapping[str, str] = {
    **{camera: "/" + color_topic(camera) for camera in CAMERAS},
    "joints": "/joint_states",
    "gripper": "/gripper/state",
    "ee_pose": "/ee_pose",
    "command": "/robot_command",
    "intervention": "/teleop/intervention",
}
MODE_DELTA = 1  # ArmCommand.MODE_DELTA


@dataclass
class EpisodeFrames:
    """One episode resampled at ``fps``: N steps of aligned observations and actions.

    Images are (N, H, W, 3) uint8 RGB; ``state`` is (N, 15) float32 (7 joint positions [rad],
    gripper width [m], TCP position [m] and orientation quaternion xyzw); ``action`` is (N, 8) float32
    (TCP target position, orientation xyzw, gripper width).
    """

    episode: Episode
    fps: float
    timestamps_ns: np.ndarray
    images: dict[str, np.ndarray]
    state: np.ndarray
    action: np.ndarray
    intervention: np.ndarray
    skill: str = ""
    arguments: list[str] = field(default_factory=list)
    success: bool | None = None

    def __len__(self) -> int:
        return len(self.timestamps_ns)

    @property
    def timestamps(self) -> np.ndarray:
        """Seconds since the first step, float32 (what LeRobot calls ``timestamp``)."""
        return ((self.timestamps_ns - self.timestamps_ns[0]) * 1e-9).astype(np.float32)


class _Stream:
    """Timestamps and values of one topic, for "latest at or before t" lookups."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.values: list = []

    def add(self, t: int, value) -> None:
        self.times.append(t)
        self.values.append(value)

    def index(self, times: np.ndarray, side: str = "right") -> np.ndarray:
        """Index of the latest sample at or before each time (``side='left'``: strictly before);
        -1 where there is none."""
        return np.searchsorted(np.asarray(self.times, dtype=np.int64), times, side=side) - 1


def _pose_array(pose) -> np.ndarray:
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w], dtype=np.float64)


def _command_targets(commands: _Stream, ee: _Stream) -> list[np.ndarray]:
    """Absolute TCP targets + gripper width of every command: a DELTA command is applied to the
    previous target (or, for the first one, to the TCP pose at that time), as the driver does."""
    targets: list[np.ndarray] = []
    previous: np.ndarray | None = None
    for t, msg in zip(commands.times, commands.values, strict=True):
        pose = _pose_array(msg.pose)
        if msg.mode == MODE_DELTA:
            if previous is None:
                i = ee.index(np.array([t]))[0]
                if i < 0:
                    previous = None
                    targets.append(np.full(8, np.nan))
                    continue
                base = _pose_array(ee.values[i].pose)
            else:
                base = previous[:7]
            position = base[:3] + pose[:3]
            rotation = quat_normalize(quat_multiply(quat_normalize(pose[3:]), base[3:]))
            pose = np.concatenate([position, rotation])
        previous = np.concatenate([pose, [msg.gripper_width]])
        targets.append(previous)
    return targets


def resample_episode(
    episode: Episode,
    fps: float = DEFAULT_FPS,
    image_size: tuple[int, int] | None = None,
    topics: Mapping[str, str] = DEFAULT_TOPICS,
    decode_images: bool = True,
) -> EpisodeFrames:
    """Resample ``episode`` at ``fps`` (see the module docstring for the rules).

    ``image_size`` = (height, width) resizes images; ``decode_images=False`` leaves ``images`` empty
    (counting steps without the cost of decoding them). Raises :class:`EpisodeError` if a required
    stream is missing from the recording.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    streams = {name: _Stream() for name in topics}
    by_topic = {topic: name for name, topic in topics.items()}
    for topic, t, raw in read_messages(episode, list(topics.values()), raw=True):
        name = by_topic[topic]
        # Images stay serialized until a step selects them; everything else is small.
        streams[name].add(t, raw if name in CAMERAS else deserialize(raw, _msgtype(name)))
    required = [name for name in topics if name != "intervention"]
    missing = [topics[name] for name in required if not streams[name].times]
    if missing:
        raise EpisodeError(f"episode {episode.path}: no messages on {', '.join(missing)}")

    period_ns = round(1e9 / fps)
    commands = streams["command"]
    last = max(s.times[-1] for s in streams.values() if s.times)
    first = commands.times[0]
    steps = (
        np.arange(first, last - period_ns + 1, period_ns, dtype=np.int64)
        if last - first >= period_ns
        else (np.zeros(0, dtype=np.int64))
    )
    observed = {name: streams[name].index(steps) for name in required if name != "command"}
    # The command in effect at the end of the step: the last one issued before the next step starts.
    command_index = commands.index(steps + period_ns, side="left")
    targets = _command_targets(commands, streams["ee_pose"])
    valid = np.all([idx >= 0 for idx in observed.values()], axis=0) if len(steps) else np.zeros(0, bool)
    valid &= command_index >= 0
    action = np.array([targets[i] for i in command_index], dtype=np.float64).reshape(-1, 8)
    valid &= np.all(np.isfinite(action), axis=1)

    keep = np.flatnonzero(valid)
    steps = steps[keep]
    action = action[keep].astype(np.float32)
    observed = {name: idx[keep] for name, idx in observed.items()}

    state = np.zeros((len(steps), STATE_DIM), dtype=np.float32)
    for row, (j, g, p) in enumerate(
        zip(observed["joints"], observed["gripper"], observed["ee_pose"], strict=True)
    ):
        pose = _pose_array(streams["ee_pose"].values[p].pose)
        joints = _joint_positions(streams["joints"].values[j])
        state[row] = state_vector(joints, streams["gripper"].values[g].width, pose[:3], pose[3:])

    images: dict[str, np.ndarray] = {}
    if decode_images:
        for name in CAMERAS:
            stream = streams[name]
            cache: dict[int, np.ndarray] = {}
            frames = []
            for i in observed[name]:
                if i not in cache:  # a camera slower than fps repeats its latest image
                    cache[i] = color_from_msg(
                        deserialize(stream.values[i], "sensor_msgs/msg/Image"), image_size
                    )
                frames.append(cache[i])
            images[name] = np.stack(frames) if frames else np.zeros((0, 0, 0, 3), dtype=np.uint8)

    return EpisodeFrames(
        episode=episode,
        fps=float(fps),
        timestamps_ns=steps,
        images=images,
        state=state,
        action=action,
        intervention=_intervention_flags(episode, streams.get("intervention"), steps, period_ns),
        skill=episode.skill,
        arguments=list(episode.metadata.arguments),
        success=episode.success,
    )


_MSGTYPES = {
    "joints": "sensor_msgs/msg/JointState",
    "gripper": "meta_robot_interfaces/msg/GripperState",
    "ee_pose": "geometry_msgs/msg/PoseStamped",
    "command": "meta_robot_interfaces/msg/ArmCommand",
    "intervention": "meta_robot_interfaces/msg/Intervention",
}


def _msgtype(name: str) -> str:
    return _MSGTYPES[name]


def _joint_positions(msg) -> np.ndarray:
    """The first 7 joint positions (the arm; finger joints, if any, follow them)."""
    position = np.asarray(msg.position, dtype=np.float64)
    if len(position) < NUM_JOINTS:
        raise EpisodeError(f"joint_states has {len(position)} positions, expected at least {NUM_JOINTS}")
    return position[:NUM_JOINTS]


def _intervention_flags(
    episode: Episode, stream: _Stream | None, steps: np.ndarray, period_ns: int
) -> np.ndarray:
    """True for a step during which the operator was in control at any moment: from the recorder's
    intervention spans, and from the Intervention messages themselves (a crash-recovered episode may
    lack the spans)."""
    flags = np.zeros(len(steps), dtype=bool)
    ends = steps + period_ns
    for span in episode.metadata.interventions:
        flags |= (steps < span.end_ns) & (ends > span.start_ns)
    if stream is not None and stream.times:
        active = np.array([bool(m.active) for m in stream.values])
        times = np.asarray(stream.times, dtype=np.int64)
        state_at_start = stream.index(steps)
        flags |= (state_at_start >= 0) & active[np.maximum(state_at_start, 0)]
        for t in times[active]:
            flags |= (steps <= t) & (t < ends)
    return flags
