"""The success classifier: predicate probabilities at camera rate, and debounced success of the
running skill, as evidence for the executive and the policy server.

On every new front camera frame (once both images, ``joint_states``, ``gripper/state`` and
``ee_pose`` have arrived) it runs the predicate classifier and publishes ``classifier/predicates``
(PredicateEstimates: every atom's probability, calibrated threshold and decision), stamped with the
frame it was computed from. While ``skill_status`` says a skill is RUNNING it also publishes
``classifier/skill_success`` (SkillSuccess) every frame: succeeded once every effect literal of the
skill held for ``debounce_frames`` frames in a row (:mod:`meta_robot.learning.success_monitor`).

Inference runs on a worker thread of its own, so callbacks never wait on the model; a frame that
arrives while the model is busy replaces the waiting one (the newest frame wins, none queue up). A
missing or corrupt checkpoint ends the process at start-up with a one-line message naming the file.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from meta_robot_interfaces.msg import GripperState, PredicateEstimates, SkillStatus, SkillSuccess
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from meta_robot.camera.image_decoding import color_from_msg
from meta_robot.core import paths
from meta_robot.core.observation import CAMERAS, STATE_NAMES, color_topic
from meta_robot.learning.checkpoint_registry import resolve_checkpoint
from meta_robot.learning.classifier import (
    CheckpointError,
    ClassifierConfig,
    LoadedClassifier,
    load_classifier,
    predict_atoms,
    select_device,
)
from meta_robot.learning.predicate_data import registry_atoms
from meta_robot.learning.success_monitor import (
    ObservationBuffer,
    SuccessDecision,
    SuccessMonitor,
    estimate_atoms,
)
from meta_robot.ros.entry import run_node
from meta_robot.ros.parameters import declare_config
from meta_robot.ros.qos import LATEST_ONLY
from meta_robot.skills.registry import load_registry

CAMERA_TOPICS = {camera: color_topic(camera) for camera in CAMERAS}
TRIGGER_CAMERA = "front"  # each of its frames is one estimate
DEFAULT_CHECKPOINT = "success_classifier"  # the shipped one, in checkpoints/manifest.yaml
THROTTLE_S = 5.0


@dataclass(frozen=True)
class ClassifierNodeConfig:
    """The success classifier's parameters (declared once, documented here)."""

    checkpoint: str = field(
        default=DEFAULT_CHECKPOINT,
        metadata={
            "doc": "a name in checkpoints/manifest.yaml, or a classifier .safetensors file or its folder "
            "(relative: to the cwd, else the package's share dir)"
        },
    )
    registry: str = field(default="", metadata={"doc": "skill registry file ('' = config/skills.yaml)"})
    debounce_frames: int = field(
        default=3,
        metadata={
            "doc": "frames in a row every effect must hold before a skill succeeded",
            "range": (1, 1000),
        },
    )
    device: str = field(default="", metadata={"doc": "torch device ('' = CUDA when available, else CPU)"})


def locate_checkpoint(value: str) -> Path:
    """The classifier file for the ``checkpoint`` parameter: a path, or a manifest name.

    A relative path is looked up in the working directory first (what a person typing it means),
    then in the package's share dir (the repository root in a source checkout), so the default works
    from any directory. Raises :class:`CheckpointError` naming every place it looked."""
    value = value.strip()
    if not value:
        raise CheckpointError("parameter 'checkpoint' is empty: give a classifier .safetensors path")
    path = Path(value).expanduser()
    if not (path.suffix == ".safetensors" or "/" in value or path.exists()):
        return resolve_checkpoint(value, "classifier")  # a manifest name: digest-checked
    if path.is_absolute():
        return path  # load_classifier names it if it is missing or corrupt
    candidates = [Path.cwd() / path]
    with contextlib.suppress(FileNotFoundError):  # neither a source checkout nor installed
        if (paths.share_dir() / path) != candidates[0]:
            candidates.append(paths.share_dir() / path)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = " or ".join(str(c) for c in candidates)
    raise CheckpointError(f"checkpoint {value}: no such file (looked for {looked})")


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class ClassifierNode(Node):
    def __init__(self) -> None:
        super().__init__("success_classifier")
        self.config = declare_config(self, "", ClassifierNodeConfig)
        cfg = self.config
        device = select_device(cfg.device or None)
        try:
            path = locate_checkpoint(cfg.checkpoint)
            self.classifier: LoadedClassifier = load_classifier(path, device)
        except CheckpointError as exc:
            # torch's shape-mismatch errors span lines; start-up errors are one line.
            raise CheckpointError(" ".join(str(exc).split())) from exc
        self.registry = load_registry(cfg.registry or None)
        model_config = self.classifier.model.config
        self.checkpoint_id = str(self.classifier.path or path)
        self._check_model(model_config)
        self.atoms = tuple(model_config.atoms)
        self.monitor = SuccessMonitor(self.classifier, self.registry, cfg.debounce_frames)
        self.cameras = tuple(sorted(model_config.cameras, key=lambda c: c != TRIGGER_CAMERA))
        self.buffer = ObservationBuffer(self.cameras, self.cameras[0], needs_state=model_config.state_dim > 0)
        self._size = model_config.image_size
        warm_up_s = self._warm_up()

        self._lock = threading.Lock()  # the monitor: skill_status callbacks vs the worker
        self._wake = threading.Condition()
        self._pending = False  # a trigger frame arrived that the worker has not processed
        self._stop = False
        self.frames = 0
        self.dropped = 0
        self._publishing = False

        self._predicates_pub = self.create_publisher(PredicateEstimates, "classifier/predicates", 10)
        self._success_pub = self.create_publisher(SkillSuccess, "classifier/skill_success", 10)
        for camera in self.cameras:
            self.create_subscription(
                Image, CAMERA_TOPICS[camera], lambda msg, c=camera: self._on_image(c, msg), LATEST_ONLY
            )
        self.create_subscription(JointState, "joint_states", self._on_joints, LATEST_ONLY)
        self.create_subscription(GripperState, "gripper/state", self._on_gripper, LATEST_ONLY)
        self.create_subscription(PoseStamped, "ee_pose", self._on_pose, LATEST_ONLY)
        self.create_subscription(SkillStatus, "skill_status", self._on_status, 10)
        self._worker = threading.Thread(target=self._work, name="classifier-inference", daemon=True)
        self._worker.start()

        uncovered = [a for a in registry_atoms(self.registry) if a not in self.atoms]
        calibrated = sum(self.monitor.thresholds[a] is not None for a in self.atoms)
        self.get_logger().info(
            f"loaded classifier {self.checkpoint_id} on {device} (warm-up {warm_up_s:.2f} s): "
            f"{len(self.atoms)} atoms, {calibrated} with calibrated thresholds; cameras "
            f"{', '.join(self.cameras)} at {self._size[0]}x{self._size[1]}; debounce "
            f"{cfg.debounce_frames} frames; atoms {' '.join(self.atoms)}"
        )
        if uncovered:
            self.get_logger().warning(
                f"the registry has atoms this classifier does not predict (skills with them in their "
                f"effects are not judged): {' '.join(uncovered)}"
            )

    def _check_model(self, config: ClassifierConfig) -> None:
        unknown = [c for c in config.cameras if c not in CAMERA_TOPICS]
        if unknown:
            raise ValueError(
                f"classifier {self.checkpoint_id} uses cameras {unknown}; this node has {list(CAMERA_TOPICS)}"
            )
        if config.state_dim not in (0, len(STATE_NAMES)):
            raise ValueError(
                f"classifier {self.checkpoint_id} expects a state of {config.state_dim} values; "
                f"this node supplies {len(STATE_NAMES)} ({', '.join(STATE_NAMES)})"
            )

    def _warm_up(self) -> float:
        """One inference on blank inputs: the first real frame should not pay for lazy initialisation."""
        config = self.classifier.model.config
        started = time.perf_counter()
        images = {c: np.zeros((*config.image_size, 3), np.uint8) for c in config.cameras}
        predict_atoms(self.classifier, images, np.zeros(config.state_dim, np.float32))
        return time.perf_counter() - started

    # -- inputs ------------------------------------------------------------------------------------
    def _on_image(self, camera: str, msg: Image) -> None:
        self.buffer.set_image(camera, msg, stamp_to_ns(msg.header.stamp))
        if camera != self.cameras[0]:
            return
        with self._wake:
            dropped = self._pending  # the model is busy: this frame replaces the waiting one
            self._pending = True
            self._wake.notify()
        if dropped:
            self.dropped += 1
            self.get_logger().warning(
                f"{self.dropped} frames dropped so far: inference is slower than the camera",
                throttle_duration_sec=THROTTLE_S,
            )

    def _on_joints(self, msg: JointState) -> None:
        try:
            self.buffer.set_joints(msg.position)
        except ValueError as exc:
            self.get_logger().error(f"joint_states ignored: {exc}", throttle_duration_sec=THROTTLE_S)

    def _on_gripper(self, msg: GripperState) -> None:
        self.buffer.set_gripper(msg.width)

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self.buffer.set_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))

    def _on_status(self, msg: SkillStatus) -> None:
        with self._lock:
            before = self.monitor.skill
            if msg.state != SkillStatus.RUNNING:
                self.monitor.clear()
            else:
                try:
                    self.monitor.set_skill(msg.skill, list(msg.arguments))
                except ValueError as exc:
                    self.monitor.clear()
                    self.get_logger().error(
                        f"cannot judge {msg.skill}({', '.join(msg.arguments)}): {exc}",
                        throttle_duration_sec=THROTTLE_S,
                    )
            after = self.monitor.skill
        if before is not after:
            if after is not None:
                self.get_logger().info(f"judging {after}: effects {' '.join(map(str, after.effects))}")
            elif before is not None:
                self.get_logger().info(f"stopped judging {before} (skill_status state {msg.state})")

    # -- inference ---------------------------------------------------------------------------------
    def _decode(self, msg: Image) -> np.ndarray:
        return color_from_msg(msg, self._size)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                self._pending = False
            try:
                self._process()
            except Exception as exc:  # one bad frame must not end the estimates
                if self.context.ok():  # (publishing fails once rclpy shuts down: not worth a log)
                    self.get_logger().error(f"inference failed: {exc!r}", throttle_duration_sec=THROTTLE_S)

    def _process(self) -> None:
        try:
            observation = self.buffer.observation(self._decode)
        except ValueError as exc:  # a wrong encoding or a truncated image: skip the frame
            self.get_logger().error(f"camera frame skipped: {exc}", throttle_duration_sec=THROTTLE_S)
            return
        if observation is None:
            self.get_logger().info(
                f"waiting for {', '.join(self.buffer.missing())}", throttle_duration_sec=THROTTLE_S
            )
            return
        started = time.perf_counter()
        state = observation.state if len(observation.state) else None
        probabilities = predict_atoms(self.classifier, observation.images, state)
        elapsed = time.perf_counter() - started
        estimates = estimate_atoms(probabilities, self.classifier.thresholds, self.atoms)
        with self._lock:
            decision = self.monitor.update(probabilities)
        stamp = ns_to_stamp(observation.stamp_ns)

        msg = PredicateEstimates()
        msg.header.stamp = stamp
        msg.atoms = list(estimates.atoms)
        msg.probabilities = [float(p) for p in estimates.probabilities]
        msg.thresholds = [float(t) for t in estimates.thresholds]
        msg.holds = list(estimates.holds)
        msg.checkpoint = self.checkpoint_id
        self._predicates_pub.publish(msg)
        if decision is not None:
            self._publish_decision(decision, stamp)
        self.frames += 1
        if not self._publishing:
            self._publishing = True
            source = self.resolve_topic_name(CAMERA_TOPICS[self.cameras[0]])
            self.get_logger().info(
                f"publishing {self.resolve_topic_name('classifier/predicates')} for every frame of "
                f"{source} ({elapsed * 1e3:.1f} ms per frame)"
            )

    def _publish_decision(self, decision: SuccessDecision, stamp: Time) -> None:
        msg = SkillSuccess()
        msg.header.stamp = stamp
        msg.skill = decision.skill
        msg.arguments = list(decision.arguments)
        msg.success_probability = float(decision.success_probability)
        msg.succeeded = decision.succeeded
        msg.consecutive = int(decision.consecutive)
        self._success_pub.publish(msg)
        if decision.succeeded and decision.consecutive == self.monitor.debounce_frames:
            self.get_logger().info(
                f"{decision.skill}({', '.join(decision.arguments)}) succeeded: every effect held for "
                f"{decision.consecutive} frames (p = {decision.success_probability:.3f})"
            )

    def close(self) -> None:
        """Stop the inference thread (run_node destroys the node afterwards)."""
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._worker.join(timeout=5.0)


def main(args: list[str] | None = None) -> None:
    """Entry point: ``success_classifier --ros-args --params-file config/success_classifier.yaml``."""
    sys.exit(run_node(ClassifierNode, shutdown=lambda node: node.close(), args=args))


if __name__ == "__main__":
    main()
