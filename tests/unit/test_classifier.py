"""Predicate classifier: metrics, augmentation, labelling of recorded episodes, training (determinism,
resume, outputs), checkpoints (round trip, corrupt files) and threshold calibration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import yaml
from episode_factory import write_episode
from rosbags.rosbag2 import StoragePlugin, Writer
from safetensors.torch import load_file

from meta_robot.dataset.episodes import list_episodes, read_messages
from meta_robot.learning.classifier import (
    CheckpointError,
    ClassifierConfig,
    PredicateClassifier,
    load_classifier,
    predict_atoms,
    predict_probabilities,
    random_shift,
    save_classifier,
)
from meta_robot.learning.metrics import (
    average_ranks,
    calibrated_threshold,
    rates_at_threshold,
    roc_auc,
    roc_curve,
    threshold_for_fpr,
    threshold_for_tpr,
)
from meta_robot.learning.predicate_data import (
    CACHE_DIR,
    EpisodeSamples,
    PredicateDataset,
    load_dataset,
    registry_atoms,
)
from meta_robot.learning.train_classifier import (
    CONFIG_FILE,
    TrainSettings,
    calibrate,
    fit,
    split_episodes,
    train_classifier,
)
from meta_robot.learning.training import CHECKPOINT_FILE, CURVES_FILE
from meta_robot.recording.episode import EpisodeMetadata, TopicInfo
from meta_robot.recording.typestore import typestore
from meta_robot.skills.registry import load_registry


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids threads spinning against
    other work (it changes no result: determinism is checked within a setting)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- metrics ---------------------------------------------------------------------------------------


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_known_values() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1], [0.1, 0.2, 0.9]) == pytest.approx(1.0)
    assert roc_auc([1, 1, 0], [0.1, 0.2, 0.9]) == pytest.approx(0.0)
    assert math.isnan(roc_auc([1, 1], [0.3, 0.4]))
    np.testing.assert_allclose(average_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])


def test_auc_matches_pairwise_count_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.random(40) < 0.4
        s = rng.integers(0, 6, 40) / 5.0  # many ties
        if y.all() or not y.any():
            continue
        assert roc_auc(y, s) == pytest.approx(_pairwise_auc(y, s))


def test_rates_at_threshold() -> None:
    y = np.array([0, 0, 0, 0, 1, 1], bool)
    s = np.array([0.1, 0.2, 0.6, 0.7, 0.6, 0.9])
    assert rates_at_threshold(y, s, 0.6) == pytest.approx((0.5, 1.0))
    assert rates_at_threshold(y, s, 0.65) == pytest.approx((0.25, 0.5))
    assert rates_at_threshold(y, s, 0.95) == pytest.approx((0.0, 0.0))
    fpr, tpr, thresholds = roc_curve(y, s)
    assert list(thresholds) == sorted(thresholds, reverse=True)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="length"):
        rates_at_threshold(y, s[:3], 0.5)


def test_threshold_for_fpr_is_the_lowest_that_meets_the_target() -> None:
    rng = np.random.default_rng(1)
    for max_fpr in (0.0, 0.02, 0.1):
        y = rng.random(500) < 0.3
        s = np.where(y, rng.normal(1.0, 1.0, 500), rng.normal(0.0, 1.0, 500))
        t = threshold_for_fpr(y, s, max_fpr)
        fpr, _ = rates_at_threshold(y, s, t)
        assert fpr <= max_fpr
        # Any lower threshold that predicts one more sample true exceeds the target on a negative.
        below = s[s < t].max()
        assert rates_at_threshold(y, s, below)[0] > max_fpr or not (~y & (s == below)).any()
    # Perfect separation: every positive kept at 0 % false positives.
    y, s = [0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]
    assert rates_at_threshold(y, s, threshold_for_fpr(y, s, 0.0)) == (0.0, 1.0)
    assert threshold_for_fpr([1, 1], [0.2, 0.3], 0.02) == math.inf  # no negatives: never claim true


def test_calibrated_threshold_keeps_a_margin_only_where_both_targets_can_be_met() -> None:
    y = np.array([0] * 100 + [1] * 10, bool)
    s = np.r_[np.linspace(0.0, 0.3, 100), np.linspace(0.6, 0.99, 10)]
    low, high = threshold_for_fpr(y, s, 0.02), threshold_for_tpr(y, s, 0.9)
    assert rates_at_threshold(y, s, high)[1] >= 0.9 and rates_at_threshold(y, s, high + 1e-9)[1] < 0.9
    t = calibrated_threshold(y, s, 0.02, 0.9)
    assert low < t < high
    fpr, tpr = rates_at_threshold(y, s, t)
    assert fpr <= 0.02 and tpr >= 0.9
    # Overlapping classes: the false-positive target wins.
    y2 = np.array([0, 0, 0, 1, 1, 1], bool)
    s2 = np.array([0.1, 0.5, 0.9, 0.2, 0.3, 0.4])
    assert calibrated_threshold(y2, s2, 0.0, 0.9) == threshold_for_fpr(y2, s2, 0.0)
    assert calibrated_threshold(y, s, 0.02, None) == low


# --- augmentation ----------------------------------------------------------------------------------


def test_random_shift_translates_within_the_pad() -> None:
    images = torch.zeros(8, 3, 16, 16)
    images[:, :, 8, 8] = 1.0
    out = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    for b in range(8):
        (ys, xs) = torch.nonzero(out[b, 0], as_tuple=True)
        assert len(ys) == 1 and abs(int(ys[0]) - 8) <= 2 and abs(int(xs[0]) - 8) <= 2
    again = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(random_shift(images, 0), images)


# --- synthetic samples for training ----------------------------------------------------------------

ATOMS = ("(bright)", "(raised)")


def _synthetic_dataset(episodes: int = 12, steps: int = 10, size: int = 16) -> PredicateDataset:
    """'(bright)' is a white square in the front image; '(raised)' is state[0] > 0."""
    rng = np.random.default_rng(7)
    items = []
    for e in range(episodes):
        bright = rng.random(steps) < 0.5
        front = rng.integers(0, 60, (steps, size, size, 3), dtype=np.uint8)
        front[bright, 4:12, 4:12] = 255
        wrist = rng.integers(0, 60, (steps, size, size, 3), dtype=np.uint8)
        state = rng.normal(0, 1, (steps, 15)).astype(np.float32)
        labels = np.stack([bright, state[:, 0] > 0], axis=1)
        items.append(
            EpisodeSamples(
                episode_id=f"20250101-0000{e:02d}-{'ab'[e % 2]}-{e:04d}",
                skill="ab"[e % 2],
                arguments=(),
                success=True,
                atoms=ATOMS,
                front=front,
                wrist=wrist,
                state=state,
                labels=labels,
                known=np.ones_like(labels),
                intervention=np.zeros(steps, bool),
                timestamps_ns=np.arange(steps, dtype=np.int64),
            )
        )
    return PredicateDataset(ATOMS, items, root="synthetic", fps=5.0, image_size=(size, size))


SMALL = {"channels": 8, "feature_dim": 16, "hidden": 32, "shift": 2}


def _weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_split_is_per_skill_by_episode_and_seeded() -> None:
    pairs = [(f"e{i:02d}", "ab"[i % 2]) for i in range(20)]
    split = split_episodes(pairs, seed=3, held_out_fraction=0.3)
    assert split == split_episodes(pairs, seed=3, held_out_fraction=0.3)
    assert split != split_episodes(pairs, seed=4, held_out_fraction=0.3)
    parts = [set(split.train), set(split.calibration), set(split.test)]
    assert set().union(*parts) == {p[0] for p in pairs} and sum(map(len, parts)) == 20
    skills = dict(pairs)
    for part in parts:
        assert {skills[i] for i in part} == {"a", "b"}


def test_training_is_deterministic_resumable_and_writes_its_outputs(tmp_path) -> None:
    data = _synthetic_dataset()
    settings = TrainSettings(epochs=2, seed=5, batch_size=16, lr=3e-3)
    a = fit(data, tmp_path / "a", settings, SMALL, device="cpu", progress=False, command="test a")
    b = fit(data, tmp_path / "b", settings, SMALL, device="cpu", progress=False, command="test b")
    wa, wb = _weights(a.weights), _weights(b.weights)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)

    # One epoch, then a rerun asking for two, continues from the checkpoint to the same weights.
    fit(
        data,
        tmp_path / "c",
        TrainSettings(epochs=1, seed=5, batch_size=16, lr=3e-3),
        SMALL,
        device="cpu",
        progress=False,
    )
    c = fit(data, tmp_path / "c", settings, SMALL, device="cpu", progress=False)
    wc = _weights(c.weights)
    assert all(torch.equal(wa[k], wc[k]) for k in wa)
    assert [h["epoch"] for h in c.history] == [1, 2]

    other = fit(
        data,
        tmp_path / "d",
        TrainSettings(epochs=2, seed=6, batch_size=16, lr=3e-3),
        SMALL,
        device="cpu",
        progress=False,
    )
    assert not all(torch.equal(wa[k], _weights(other.weights)[k]) for k in wa)

    for name in (CHECKPOINT_FILE, CONFIG_FILE, CURVES_FILE):
        assert (tmp_path / "a" / name).is_file()
    record = yaml.safe_load((tmp_path / "a" / CONFIG_FILE).read_text())
    assert record["command"] == "test a"
    assert record["software"]["meta_robot"]
    episodes = record["data"]["episodes"]
    assert sorted(episodes["train"] + episodes["calibration"] + episodes["test"]) == sorted(data.episode_ids)
    assert set(record["metrics"]["atoms"]) == set(ATOMS)
    for entry in record["metrics"]["atoms"].values():
        assert entry["calibration"]["fpr"] <= 0.02


def test_a_checkpoint_from_other_settings_is_not_resumed(tmp_path) -> None:
    data = _synthetic_dataset()
    fit(data, tmp_path, TrainSettings(epochs=1, seed=5, batch_size=16), SMALL, device="cpu", progress=False)
    with pytest.raises(CheckpointError, match="other data, split or settings"):
        fit(
            data,
            tmp_path,
            TrainSettings(epochs=2, seed=9, batch_size=16),
            SMALL,
            device="cpu",
            progress=False,
        )


def test_the_classifier_learns_an_image_atom_and_a_state_atom(tmp_path) -> None:
    data = _synthetic_dataset(episodes=16, steps=12)
    result = fit(
        data,
        tmp_path,
        TrainSettings(epochs=15, seed=0, batch_size=16, lr=3e-3),
        SMALL,
        device="cpu",
        progress=False,
    )
    for atom in ATOMS:
        assert result.metrics["atoms"][atom]["test"]["auc"] > 0.9, result.metrics["atoms"][atom]


def test_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    config = ClassifierConfig(atoms=ATOMS, image_size=(16, 16), **SMALL)
    model = PredicateClassifier(config)
    model.set_state_normalisation(np.full(15, 0.5), np.full(15, 2.0))
    thresholds = {"(bright)": 0.7, "(raised)": None}
    path = save_classifier(model, tmp_path / "m.safetensors", thresholds, extra={"note": "x"})
    loaded = load_classifier(path, device="cpu")
    assert loaded.model.config == config
    assert loaded.thresholds == thresholds and loaded.extra == {"note": "x"}
    rng = np.random.default_rng(0)
    images = {cam: rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8) for cam in config.cameras}
    state = rng.normal(size=(4, 15)).astype(np.float32)
    np.testing.assert_array_equal(
        predict_probabilities(model, images, state), predict_probabilities(loaded.model, images, state)
    )
    # One observation at camera resolution is resized to the model's input.
    big = {cam: rng.integers(0, 255, (48, 48, 3), dtype=np.uint8) for cam in config.cameras}
    probs = predict_atoms(loaded, big, state[0])
    assert set(probs) == set(ATOMS) and all(0.0 <= p <= 1.0 for p in probs.values())
    with pytest.raises(ValueError, match="RGB uint8"):
        predict_atoms(loaded, {**big, "front": big["front"].astype(np.float32)}, state[0])
    with pytest.raises(ValueError, match="missing camera"):
        predict_atoms(loaded, {"front": big["front"]}, state[0])


def test_missing_and_corrupt_checkpoints_give_clear_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        load_classifier(tmp_path / "absent.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_classifier(garbage)
    model = PredicateClassifier(ClassifierConfig(atoms=ATOMS, image_size=(16, 16), **SMALL))
    good = save_classifier(model, tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_classifier(truncated)
    with pytest.raises(CheckpointError, match="no such file"):
        load_classifier(tmp_path)  # a folder without classifier.safetensors


def test_calibration_keeps_the_calibration_fpr_under_target() -> None:
    from meta_robot.learning.predicate_data import SampleArrays

    rng = np.random.default_rng(3)

    def part(n: int) -> tuple[np.ndarray, SampleArrays]:
        labels = rng.random((n, 2)) < 0.4
        probs = np.clip(labels * 0.3 + rng.random((n, 2)) * 0.7, 0, 1).astype(np.float32)
        empty = np.zeros((n, 1, 1, 3), np.uint8)
        arrays = SampleArrays(
            empty, empty, np.zeros((n, 15), np.float32), labels, np.ones_like(labels), np.zeros(n, np.int64)
        )
        return probs, arrays

    thresholds, report = calibrate(ATOMS, part(400), part(400), 0.02, 0.9)
    for atom in ATOMS:
        assert report[atom]["calibration"]["fpr"] <= 0.02
        assert report[atom]["threshold"] == thresholds[atom]
        assert 0.0 < report[atom]["test"]["tpr"] < 1.0


# --- real recordings: labels from privileged state --------------------------------------------------

OBJECTS_TYPE = "meta_robot_interfaces/msg/ObjectStates"


def _with_object_states(root, episode_id: str, start_s: float) -> None:
    """A factory episode plus /sim/object_states: red_cube on the desk, the drawer sliding out at
    0.1 m/s (open from 1.2 s), the other objects absent from the scene."""
    from episode_factory import START_NS

    start_ns = START_NS + round(start_s * 1e9)
    source = write_episode(
        root / "src", episode_id, "open_drawer", (), "success", 2.0, (24, 24), start_ns=start_ns
    )
    ts = typestore()
    types = ts.types
    folder = root / episode_id
    connections = {}
    counts: dict[str, int] = {}
    with Writer(folder, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        messages = list(read_messages(source, raw=True))
        for k in range(41):
            ns = start_ns + k * 50_000_000
            cube = types["meta_robot_interfaces/msg/ObjectState"](
                name="red_cube",
                pose=types["geometry_msgs/msg/Pose"](
                    position=types["geometry_msgs/msg/Point"](x=0.4, y=0.0, z=0.02),
                    orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                ),
                twist=types["geometry_msgs/msg/Twist"](
                    linear=types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                    angular=types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                ),
            )
            msg = types[OBJECTS_TYPE](
                header=types["std_msgs/msg/Header"](
                    stamp=types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
                    frame_id="base",
                ),
                objects=[cube],
                joint_names=["drawer_slide"],
                joint_positions=np.array([0.1 * k * 0.05]),
            )
            messages.append(("/sim/object_states", ns, ts.serialize_cdr(msg, OBJECTS_TYPE)))
        typemap = {c.topic: c.msgtype for c in _connections(source)}
        typemap["/sim/object_states"] = OBJECTS_TYPE
        for topic, ns, raw in sorted(messages, key=lambda m: m[1]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, typemap[topic], typestore=ts)
            writer.write(connections[topic], ns, raw)
            counts[topic] = counts.get(topic, 0) + 1
    EpisodeMetadata(
        episode_id=episode_id,
        task="open_drawer",
        skill="open_drawer",
        arguments=[],
        seed=1,
        operator="scripted",
        outcome="success",
        complete=True,
        start_time_ns=start_ns,
        end_time_ns=start_ns + 2 * 10**9,
        topics={t: TopicInfo(type=typemap[t], count=n) for t, n in counts.items()},
    ).save(folder)


def _connections(folder):
    from rosbags.highlevel import AnyReader

    with AnyReader([folder], default_typestore=typestore()) as reader:
        return list(reader.connections)


def test_recorded_episodes_are_labelled_cached_and_trainable(tmp_path) -> None:
    root = tmp_path / "episodes"
    for i in range(3):
        _with_object_states(root, f"20250101-12000{i}-open_drawer-000{i + 1}", 10.0 * i)
    assert len(list_episodes(root)) == 3  # the factory sources live under src/, not the root
    registry = load_registry()
    data = load_dataset(root, fps=5.0, image_size=(16, 16), registry=registry, progress=False)
    assert data.atoms == registry_atoms(registry) and len(data.episodes) == 3
    atoms = list(data.atoms)
    ep = data.episodes[0]
    assert ep.front.shape[1:] == (16, 16, 3) and ep.state.shape[1] == 15
    times = (ep.timestamps_ns - ep.timestamps_ns[0]) * 1e-9 + 0.3  # steps start at the first command
    opened = ep.labels[:, atoms.index("(drawer_open)")]
    np.testing.assert_array_equal(opened, times >= 1.2 + 1e-6)
    assert ep.labels[:, atoms.index("(on_desk red_cube)")].all()
    assert ep.labels[:, atoms.index("(hand_empty)")].all()
    assert not ep.labels[:, atoms.index("(holding red_cube)")].any()
    # Absent objects are unknown, not negative.
    assert not ep.known[:, atoms.index("(on_desk blue_bar)")].any()
    assert ep.known[:, atoms.index("(on_desk red_cube)")].all()

    cached = sorted((root / CACHE_DIR).glob("*.npz"))
    assert len(cached) == 3
    again = load_dataset(root, fps=5.0, image_size=(16, 16), registry=registry, progress=False)
    np.testing.assert_array_equal(again.episodes[0].labels, ep.labels)
    np.testing.assert_array_equal(again.episodes[0].front, ep.front)

    result = train_classifier(
        root,
        tmp_path / "out",
        epochs=1,
        seed=0,
        batch_size=8,
        fps=5.0,
        image_size=(16, 16),
        model_options=SMALL,
        device="cpu",
        progress=False,
        command="meta-robot train classifier",
    )
    loaded = load_classifier(tmp_path / "out")
    assert loaded.model.config.atoms == data.atoms
    record = yaml.safe_load((tmp_path / "out" / CONFIG_FILE).read_text())
    assert record["data"]["root"] == str(root)
    assert result.metrics["atoms"]["(drawer_open)"]["calibration"]["positives"] > 0


def test_fine_tuning_starts_from_the_given_classifier_and_refuses_one_that_does_not_fit(tmp_path) -> None:
    data = _synthetic_dataset()
    base = fit(
        data,
        tmp_path / "base",
        TrainSettings(epochs=2, seed=5, batch_size=16, lr=3e-3),
        SMALL,
        device="cpu",
        progress=False,
    )
    loaded = load_classifier(base.weights, device="cpu")
    start = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    tuned = fit(
        data,
        tmp_path / "tuned",
        TrainSettings(epochs=1, seed=5, batch_size=16, lr=1e-4),
        None,
        device="cpu",
        progress=False,
        init_from=loaded,
    )
    after = _weights(tuned.weights)
    moved = [
        k
        for k, v in start.items()
        if k in after and v.dtype.is_floating_point and not torch.equal(v, after[k])
    ]
    assert moved, "fine-tuning changed nothing"
    # small steps from the base: the tuned weights stay close to where they started
    assert all((after[k] - start[k]).abs().max() < 0.1 for k in moved)
    other = _synthetic_dataset(size=24)
    with pytest.raises(ValueError, match="cannot fine-tune"):
        fit(
            other,
            tmp_path / "x",
            TrainSettings(epochs=1),
            None,
            device="cpu",
            progress=False,
            init_from=load_classifier(base.weights, device="cpu"),
        )
