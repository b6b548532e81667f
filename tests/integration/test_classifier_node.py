"""The success classifier node against the sim bridge, as separate processes over DDS.

A freshly initialised (untrained) classifier is enough: the test checks the node's contract, not the
model's accuracy. Every atom is estimated once per front camera frame and stamped with that frame;
a RUNNING skill_status makes skill_success appear for that skill and another state stops it; a bad
image is skipped without ending the node; a missing or corrupt checkpoint ends it at start-up with a
message naming the file.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from meta_robot_interfaces.msg import PredicateEstimates, SkillStatus, SkillSuccess
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from meta_robot.learning.classifier import ClassifierConfig, PredicateClassifier, save_classifier
from meta_robot.learning.predicate_data import registry_atoms
from meta_robot.ros.background import BackgroundNode
from meta_robot.ros.graph import NodeSpec, sim_graph
from meta_robot.ros.launcher import GraphProcesses, node_command, write_overrides
from meta_robot.skills.registry import load_registry

pytestmark = pytest.mark.integration
# A namespace of its own: a neighbour's graph on the same DDS domain cannot mix its frames in.
NS = f"classifier_test_{os.getpid()}"
FULL_NAME = f"/{NS}/success_classifier"
ATOMS = registry_atoms(load_registry())
UNCALIBRATED = "(on_shelf blue_bar)"
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")  # the sim bridge renders headless
    return env


def classifier_spec(checkpoint: str, namespace: str = NS) -> NodeSpec:
    return NodeSpec(
        name="success_classifier",
        executable="success_classifier",
        module="meta_robot.nodes.success_classifier_node",
        params_files=("success_classifier.yaml",),
        parameters={"checkpoint": checkpoint, "debounce_frames": 2},
        namespace=namespace,
    )


def run_to_exit(spec: NodeSpec, folder: Path) -> subprocess.CompletedProcess[str]:
    cmd = node_command(spec, write_overrides(spec, folder))
    return subprocess.run(cmd, env=environment(), capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = ClassifierConfig(atoms=ATOMS, image_size=(32, 32), channels=8, feature_dim=16, hidden=16)
    thresholds = {a: (None if a == UNCALIBRATED else 0.5) for a in ATOMS}
    path = tmp_path_factory.mktemp("classifier") / "classifier.safetensors"
    return save_classifier(PredicateClassifier(config), path, thresholds)


@pytest.fixture(scope="module")
def graph(checkpoint, tmp_path_factory):
    specs = [
        *sim_graph("default", seed=1, namespace=NS, bridge_parameters={"camera_rate": 5.0}),
        classifier_spec(str(checkpoint)),
    ]
    with GraphProcesses(specs, environment(), log_dir=tmp_path_factory.mktemp("logs")) as running:
        yield running
        running.check_running()


class Listener:
    """The test's side: the front camera's stamps, the classifier's outputs, a skill_status publisher."""

    def __init__(self, node, graph: GraphProcesses) -> None:
        self.node, self.graph = node, graph
        self.camera_stamps: list[tuple[int, int]] = []
        self.predicates: list[PredicateEstimates] = []
        self.successes: list[SkillSuccess] = []
        node.create_subscription(
            Image, f"/{NS}/camera/color/image_raw", lambda m: self.camera_stamps.append(key(m)), RELIABLE
        )
        node.create_subscription(
            PredicateEstimates, f"/{NS}/classifier/predicates", self.predicates.append, RELIABLE
        )
        node.create_subscription(
            SkillSuccess, f"/{NS}/classifier/skill_success", self.successes.append, RELIABLE
        )
        self.status_pub = node.create_publisher(SkillStatus, f"/{NS}/skill_status", 10)
        self.image_pub = node.create_publisher(Image, f"/{NS}/camera/color/image_raw", 10)

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.graph.check_running()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def wait_for_frames(self, count: int) -> None:
        """Until ``count`` more estimates have arrived."""
        target = len(self.predicates) + count
        self.wait_until(lambda: len(self.predicates) >= target, f"{count} more classifier/predicates")

    def send_status(self, skill: str, arguments: list[str], state: int) -> None:
        self.status_pub.publish(SkillStatus(skill=skill, arguments=arguments, state=state))


def key(msg) -> tuple[int, int]:
    return (msg.header.stamp.sec, msg.header.stamp.nanosec)


@pytest.fixture(scope="module")
def listener(graph):
    with BackgroundNode("test_classifier_listener") as background:
        listener = Listener(background.node, graph)
        listener.wait_until(lambda: len(listener.camera_stamps) >= 1, "the sim bridge's first frame")
        listener.wait_for_frames(3)
        listener.wait_until(lambda: listener.status_pub.get_subscription_count() >= 1, "skill_status match")
        yield listener


def test_every_atom_is_estimated_per_camera_frame(listener, checkpoint):
    listener.wait_for_frames(2)
    first_seen = min(listener.camera_stamps)
    judged = [m for m in listener.predicates if key(m) >= first_seen]
    assert len(judged) >= 2
    cameras = set(listener.camera_stamps)
    for msg in judged:
        assert key(msg) in cameras, "an estimate must carry the stamp of the frame it was computed from"
        assert tuple(msg.atoms) == ATOMS
        assert len(msg.probabilities) == len(msg.thresholds) == len(msg.holds) == len(ATOMS)
        assert all(0.0 <= p <= 1.0 for p in msg.probabilities)
        for atom, p, threshold, holds in zip(
            msg.atoms, msg.probabilities, msg.thresholds, msg.holds, strict=True
        ):
            if atom == UNCALIBRATED:
                assert math.isnan(threshold) and not holds
            else:
                assert threshold == pytest.approx(0.5) and holds == (p >= threshold)
        assert msg.checkpoint == str(checkpoint)
    assert len({key(m) for m in judged}) == len(judged), "one estimate per frame"
    log = listener.graph.log_of(FULL_NAME)
    assert str(checkpoint) in log and ("on cpu" in log or "on cuda" in log)
    assert "publishing" in log


def test_running_skill_gets_success_estimates_until_it_stops(listener):
    listener.successes.clear()
    listener.send_status("pick", ["red_cube"], SkillStatus.RUNNING)
    listener.wait_until(lambda: len(listener.successes) >= 3, "classifier/skill_success for pick(red_cube)")
    cameras = set(listener.camera_stamps)
    for msg in listener.successes:
        assert (msg.skill, list(msg.arguments)) == ("pick", ["red_cube"])
        assert 0.0 <= msg.success_probability <= 1.0
        assert msg.succeeded == (msg.consecutive >= 2)
        assert key(msg) in cameras
    assert "judging pick(red_cube)" in listener.graph.log_of(FULL_NAME)

    listener.send_status("pick", ["red_cube"], SkillStatus.SUCCEEDED)
    listener.wait_until(lambda: "stopped judging" in listener.graph.log_of(FULL_NAME), "the skill to clear")
    listener.wait_for_frames(2)
    latest = key(listener.predicates[-1])
    assert all(key(m) < latest for m in listener.successes), "skill_success went on after the skill ended"


def test_unknown_skill_is_logged_not_judged(listener):
    listener.successes.clear()
    listener.send_status("fly", ["red_cube"], SkillStatus.RUNNING)
    listener.wait_until(lambda: "unknown skill 'fly'" in listener.graph.log_of(FULL_NAME), "the error log")
    listener.wait_for_frames(2)
    assert listener.successes == []


def test_bad_image_is_skipped_and_the_node_goes_on(listener):
    bad = Image(height=4, width=4, encoding="mono16", step=8, data=bytes(32))
    listener.wait_until(lambda: listener.image_pub.get_subscription_count() >= 1, "the image subscription")
    listener.image_pub.publish(bad)
    listener.wait_until(
        lambda: "unsupported image encoding 'mono16'" in listener.graph.log_of(FULL_NAME), "the error log"
    )
    listener.wait_for_frames(2)
    listener.graph.check_running()


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty"])
def test_unusable_checkpoint_ends_the_node_at_start_up(case, tmp_path):
    path = tmp_path / "classifier.safetensors"
    if case == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    checkpoint = "" if case == "empty" else str(path)
    result = run_to_exit(classifier_spec(checkpoint, namespace=f"{NS}_{case}"), tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert ("checkpoint" in errors[0]) if case == "empty" else (str(path) in errors[0])
    assert "Traceback" not in result.stderr
