"""Success monitor: debounced success of the active skill from per-frame atom probabilities (fed
directly, so only the monitor's logic is under test), its refusals, and observation assembly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meta_robot.learning.classifier import ClassifierConfig, LoadedClassifier, PredicateClassifier
from meta_robot.learning.predicate_data import registry_atoms
from meta_robot.learning.success_monitor import ObservationBuffer, SuccessMonitor, estimate_atoms
from meta_robot.skills.registry import RegistryError, load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def make_classifier(atoms, thresholds=None) -> LoadedClassifier:
    config = ClassifierConfig(atoms=tuple(atoms), image_size=(16, 16), channels=4, feature_dim=8, hidden=8)
    return LoadedClassifier(PredicateClassifier(config), dict(thresholds or {}))


@pytest.fixture(scope="module")
def atoms(registry):
    return registry_atoms(registry)


@pytest.fixture
def monitor(registry, atoms):
    return SuccessMonitor(make_classifier(atoms, {a: 0.5 for a in atoms}), registry, debounce_frames=3)


def frame(atoms, true_atoms: dict[str, float]) -> dict[str, float]:
    """Probabilities: 0.1 for every atom but the given ones."""
    assert set(true_atoms) <= set(atoms)
    return dict.fromkeys(atoms, 0.1) | true_atoms


def test_success_needs_n_consecutive_frames_and_a_dip_resets(monitor, atoms):
    monitor.set_skill("open_drawer", [])  # effects: (drawer_open), (not (drawer_closed))
    done = frame(atoms, {"(drawer_open)": 0.9})
    not_done = frame(atoms, {"(drawer_open)": 0.4})
    decisions = [monitor.update(p) for p in (done, done, not_done, done, done, done, done)]
    assert [d.consecutive for d in decisions] == [1, 2, 0, 1, 2, 3, 4]
    assert [d.succeeded for d in decisions] == [False, False, False, False, False, True, True]
    assert [d.holds for d in decisions] == [True, True, False, True, True, True, True]
    assert decisions[0].skill == "open_drawer" and decisions[0].arguments == ()
    # the least likely effect literal: drawer_open 0.9 vs not drawer_closed 1 - 0.1
    assert decisions[0].success_probability == pytest.approx(0.9)
    assert decisions[2].success_probability == pytest.approx(0.4)


def test_negated_effects_must_be_false(monitor, atoms):
    monitor.set_skill("pick", ["red_cube"])  # (holding red_cube) (not (hand_empty)) (not (on_desk red_cube))
    held_but_hand_empty = frame(atoms, {"(holding red_cube)": 0.95, "(hand_empty)": 0.7})
    decision = monitor.update(held_but_hand_empty)
    assert not decision.holds and decision.consecutive == 0
    assert decision.success_probability == pytest.approx(0.3)
    held = frame(atoms, {"(holding red_cube)": 0.95, "(on_desk red_cube)": 0.2})
    for _ in range(3):
        decision = monitor.update(held)
    assert decision.succeeded and decision.success_probability == pytest.approx(0.8)
    # another object's atoms do not count
    monitor.clear()
    monitor.set_skill("pick", ["green_cylinder"])
    assert not monitor.update(held).holds


def test_repeated_set_skill_keeps_the_count_and_a_new_skill_restarts_it(monitor, atoms):
    done = frame(atoms, {"(drawer_open)": 0.9})
    monitor.set_skill("open_drawer")
    monitor.update(done)
    monitor.set_skill("open_drawer", [])  # the same skill, reported again by skill_status
    assert monitor.update(done).consecutive == 2
    monitor.set_skill("close_drawer")
    assert monitor.update(frame(atoms, {"(drawer_closed)": 0.9})).consecutive == 1
    monitor.clear()
    assert monitor.skill is None and monitor.update(done) is None


def test_uncalibrated_atom_never_decides_success(registry, atoms):
    thresholds = {a: 0.5 for a in atoms} | {"(drawer_closed)": None}
    monitor = SuccessMonitor(make_classifier(atoms, thresholds), registry, debounce_frames=1)
    monitor.set_skill("open_drawer")
    decision = monitor.update(frame(atoms, {"(drawer_open)": 0.99}))
    assert not decision.holds and not decision.succeeded


def test_unknown_skill_or_argument_is_refused_by_name(monitor):
    with pytest.raises(RegistryError, match="unknown skill 'fly'"):
        monitor.set_skill("fly", [])
    with pytest.raises(RegistryError, match="unknown object 'purple_cube'"):
        monitor.set_skill("pick", ["purple_cube"])
    with pytest.raises(RegistryError, match="takes"):
        monitor.set_skill("pick", [])
    with pytest.raises(ValueError, match="must be a object"):
        monitor.set_skill("pick", ["near_left"])
    assert monitor.skill is None


def test_skill_with_an_atom_the_classifier_lacks_is_refused(registry, atoms):
    partial = [a for a in atoms if a != "(on_shelf blue_bar)"]
    monitor = SuccessMonitor(make_classifier(partial, dict.fromkeys(partial, 0.5)), registry)
    monitor.set_skill("place_on_shelf", ["red_cube"])  # its atoms are there
    with pytest.raises(ValueError, match=r"\(on_shelf blue_bar\)"):
        monitor.set_skill("place_on_shelf", ["blue_bar"])


def test_debounce_frames_must_be_positive(registry, atoms):
    with pytest.raises(ValueError, match="debounce_frames"):
        SuccessMonitor(make_classifier(atoms), registry, debounce_frames=0)


def test_estimates_use_calibrated_thresholds_only():
    probabilities = {"(a)": 0.6, "(b)": 0.6, "(c)": 0.2}
    estimates = estimate_atoms(probabilities, {"(a)": 0.5, "(c)": 0.3}, ["(a)", "(b)", "(c)"])
    assert estimates.holds == (True, False, False)
    assert estimates.thresholds[0] == 0.5 and math.isnan(estimates.thresholds[1])


def test_observation_waits_for_every_stream_and_carries_the_front_stamp():
    buffer = ObservationBuffer(("front", "wrist"))
    front, wrist = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8)
    buffer.set_image("front", front, 1_000)
    buffer.set_joints(list(range(9)))  # 7 arm joints + 2 fingers
    buffer.set_gripper(0.04)
    assert buffer.observation() is None
    assert buffer.missing() == ["wrist", "ee_pose"]
    buffer.set_pose((0.4, 0.0, 0.3), (1.0, 0.0, 0.0, 0.0))
    buffer.set_image("wrist", wrist, 2_000)
    observation = buffer.observation()
    assert observation.stamp_ns == 1_000
    assert observation.images["wrist"] is wrist
    np.testing.assert_allclose(observation.state, [0, 1, 2, 3, 4, 5, 6, 0.04, 0.4, 0, 0.3, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="bad encoding"):
        buffer.observation(decode=lambda _: (_ for _ in ()).throw(ValueError("bad encoding")))
    with pytest.raises(ValueError, match="expected at least 7"):
        buffer.set_joints([0.0] * 6)
