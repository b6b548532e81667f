"""Symbolic state from classifier frames: majority over a window, unknown atoms, freshness."""

from __future__ import annotations

import math
import threading

import pytest

from meta_robot.planning.state_estimation import PredicateFrame, StateEstimator, decide

ATOMS = ["(hand_empty)", "(holding red_cube)", "(in_region red_cube near_left)"]
NAN = math.nan


def frame(hand_empty: bool, holding: bool) -> PredicateFrame:
    return PredicateFrame.from_lists(
        ATOMS,
        [0.9 if hand_empty else 0.1, 0.9 if holding else 0.1, 0.6],
        [0.5, 0.5, NAN],
        [hand_empty, holding, True],
    )


def test_an_atom_is_true_when_it_held_on_most_frames_of_the_window():
    estimate = decide([frame(True, False), frame(False, True), frame(False, True)])
    assert estimate.atoms == {("holding", "red_cube")}
    assert estimate.confidence[("holding", "red_cube")] == pytest.approx((0.1 + 0.9 + 0.9) / 3)
    assert "(holding red_cube) 0.63" in estimate.describe()


def test_atoms_without_a_threshold_are_unknown_and_false():
    estimate = decide([frame(True, False)])
    assert ("in_region", "red_cube", "near_left") in estimate.unknown
    assert ("in_region", "red_cube", "near_left") not in estimate.atoms


def test_mismatched_arrays_and_bad_atoms_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        PredicateFrame.from_lists(ATOMS, [0.1], [0.5], [True])
    with pytest.raises(ValueError, match="not a ground atom"):
        PredicateFrame.from_lists(["holding red_cube"], [0.1], [0.5], [False])


def test_wait_uses_only_frames_that_arrive_after_the_mark():
    estimator = StateEstimator(window=2)
    for _ in range(2):
        estimator.add(frame(True, False))
    mark = estimator.mark()

    def feed():
        for _ in range(2):
            estimator.add(frame(False, True))

    threading.Thread(target=feed).start()
    assert estimator.wait(mark, timeout=5.0).atoms == {("holding", "red_cube")}


def test_wait_fails_clearly_when_the_classifier_is_silent():
    estimator = StateEstimator(window=3)
    estimator.add(frame(True, False))
    with pytest.raises(TimeoutError, match="0 of 3 fresh predicate estimates"):
        estimator.wait(timeout=0.05)


def test_an_object_placed_nowhere_takes_its_most_likely_place():
    atoms = ["(on_desk red_cube)", "(in_drawer red_cube)", "(holding red_cube)"]
    undecided = PredicateFrame.from_lists(atoms, [0.9, 0.3, 0.05], [0.95, 0.5, 0.5], [False, False, False])
    groups = [[("holding", "red_cube"), ("on_desk", "red_cube"), ("in_drawer", "red_cube")]]
    assert decide([undecided]).atoms == frozenset()
    assert decide([undecided], groups).atoms == {("on_desk", "red_cube")}
    unlikely = PredicateFrame.from_lists(atoms, [0.2, 0.3, 0.05], [0.95, 0.5, 0.5], [False, False, False])
    assert decide([unlikely], groups).atoms == {("in_drawer", "red_cube")}  # it is somewhere


def test_an_object_in_a_closed_drawer_stays_there_whatever_the_camera_suggests():
    from meta_robot.planning.state_estimation import Occlusion, StateEstimate, persist_hidden

    closes = Occlusion.parse("(drawer_closed) hides in_drawer")
    group = [("holding", "red_cube"), ("on_desk", "red_cube"), ("in_drawer", "red_cube")]
    before = frozenset({("drawer_open",), ("in_drawer", "red_cube")})
    seen = StateEstimate(frozenset({("drawer_closed",), ("on_desk", "red_cube")}), {}, frozenset(), 5)
    kept = persist_hidden(seen, before, [closes], [group])
    assert kept.atoms == {("drawer_closed",), ("in_drawer", "red_cube")}
    opened = StateEstimate(frozenset({("drawer_open",), ("on_desk", "red_cube")}), {}, frozenset(), 5)
    assert persist_hidden(opened, before, [closes], [group]) is opened  # visible again: the camera wins
    with pytest.raises(ValueError, match="is not an occlusion"):
        Occlusion.parse("(drawer_closed) in_drawer")
