"""Goal-conditioned BC policy: action encoding, temporal ensembling, training, serving, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from episode_factory import START_NS, write_episode
from safetensors.torch import load_file

from meta_robot.core.geometry import quat_normalize, rotvec_to_quat
from meta_robot.dataset.torch_dataset import EpisodeDataset
from meta_robot.learning.bc_policy import (
    BCConfig,
    BCNetwork,
    BCPolicy,
    ChunkBuffer,
    absolute_action,
    relative_actions,
    save_bc_policy,
)
from meta_robot.learning.checkpoints import CheckpointError
from meta_robot.learning.classifier import ClassifierConfig, PredicateClassifier, save_classifier
from meta_robot.learning.policy import Observation, PolicyError, SkillRequest, load_policy
from meta_robot.learning.train_policy import (
    CONFIG_FILE,
    PolicyTrainSettings,
    fit_policy,
)
from meta_robot.learning.training import CHECKPOINT_FILE, CURVES_FILE

TINY = {"channels": 8, "feature_dim": 16, "embed_dim": 8, "hidden": 64, "chunk": 4, "dropout": 0.0}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids threads spinning."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _state(position=(0.4, 0.0, 0.3), quat=(1.0, 0.0, 0.0, 0.0)) -> np.ndarray:
    return np.array([0.0] * 7 + [0.08, *position, *quat], dtype=np.float32)


def _dataset(root, n: int = 4) -> EpisodeDataset:
    for k in range(n):
        skill, args = ("pick", ("red_cube",)) if k % 2 == 0 else ("push", ("blue_bar", "near_left"))
        write_episode(
            root,
            f"20250101-1200{k:02d}-{skill}-{k:04d}",
            skill,
            args,
            "success",
            duration_s=2.0,
            image_size=(32, 32),
            start_ns=START_NS + k * 10_000_000_000,
        )
    return EpisodeDataset(root, image_size=(32, 32), fps=10.0, uint8_images=True, cache_dir=None)


def test_relative_actions_round_trip_through_absolute() -> None:
    rng = np.random.default_rng(0)
    state = _state((0.45, -0.1, 0.2), quat_normalize(rng.normal(size=4)))
    targets = np.array(
        [
            [0.5, 0.0, 0.25, *quat_normalize(rng.normal(size=4)), 0.08],
            [0.3, 0.1, 0.1, 0.0, 0.0, 0.0, 1.0, 0.0],
        ]
    )
    relative = relative_actions(state, targets)
    assert relative.shape == (2, 7)
    for target, rel in zip(targets, relative, strict=True):
        position, orientation, width = absolute_action(state, rel)
        np.testing.assert_allclose(position, target[:3], atol=1e-6)
        assert abs(abs(float(orientation @ quat_normalize(target[3:7]))) - 1.0) < 1e-5
        assert width == pytest.approx(target[7])


def test_temporal_ensemble_weights_older_chunks_more() -> None:
    buffer = ChunkBuffer()
    q = np.array([0.0, 0.0, 0.0, 1.0])
    buffer.add(0, np.array([[0.0, 0, 0, *q, 0.0], [1.0, 0, 0, *q, 0.0]]))
    buffer.add(1, np.array([[3.0, 0, 0, *q, 0.0], [5.0, 0, 0, *q, 0.0]]))
    blended = buffer.blend(1, decay=0.5)
    w = np.exp(-0.5 * np.arange(2))
    w /= w.sum()
    assert blended[0] == pytest.approx(w[0] * 1.0 + w[1] * 3.0)
    buffer.add(2, np.array([[7.0, 0, 0, *q, 0.0], [9.0, 0, 0, *q, 0.0]]))
    assert len(buffer.chunks) == 2  # the chunk from step 0 no longer reaches step 2
    # opposite-sign quaternions of the same rotation blend to that rotation
    buffer = ChunkBuffer()
    r = rotvec_to_quat(np.array([0.0, 0.0, 0.3]))
    buffer.add(0, np.array([[0.0, 0, 0, *r, 0.0]]))
    buffer.add(0, np.array([[0.0, 0, 0, *(-r), 0.0]]))
    assert abs(float(buffer.blend(0, 0.1)[3:7] @ r)) == pytest.approx(1.0)


def test_training_is_deterministic_resumable_and_writes_its_outputs(tmp_path) -> None:
    data = _dataset(tmp_path / "data", n=6)
    settings = PolicyTrainSettings(epochs=2, seed=3, batch_size=16, lr=1e-3, held_out_fraction=0.3)
    a = fit_policy(data, tmp_path / "a", settings, TINY, device="cpu", progress=False, command="test a")
    b = fit_policy(data, tmp_path / "b", settings, TINY, device="cpu", progress=False)
    wa, wb = load_file(str(a.weights)), load_file(str(b.weights))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    one = PolicyTrainSettings(epochs=1, seed=3, batch_size=16, lr=1e-3, held_out_fraction=0.3)
    fit_policy(data, tmp_path / "c", one, TINY, device="cpu", progress=False)
    c = fit_policy(data, tmp_path / "c", settings, TINY, device="cpu", progress=False)
    assert all(torch.equal(wa[k], load_file(str(c.weights))[k]) for k in wa)
    assert [h["epoch"] for h in c.history] == [1, 2]
    for name in (CHECKPOINT_FILE, CONFIG_FILE, CURVES_FILE):
        assert (tmp_path / "a" / name).is_file()
    record = yaml.safe_load((tmp_path / "a" / CONFIG_FILE).read_text())
    assert record["command"] == "test a"
    assert sorted(record["data"]["episodes"]["train"] + record["data"]["episodes"]["held_out"]) == sorted(
        e.episode_id for e in data.episodes
    )
    policy = load_policy(a.weights, device="cpu")
    assert set(policy.skills) == {"pick", "push"}
    assert policy.info["command"] == "test a"


def test_the_policy_imitates_the_demonstrated_targets(tmp_path) -> None:
    """The factory's commands lead the TCP by 10 cm in x; a trained policy must ask for the same."""
    data = _dataset(tmp_path / "data", n=6)
    settings = PolicyTrainSettings(epochs=60, seed=0, batch_size=32, lr=3e-3, held_out_fraction=0.3)
    result = fit_policy(data, tmp_path / "run", settings, TINY, device="cpu", progress=False)
    policy = load_policy(result.weights, device="cpu")
    arrays = data.arrays()
    i = len(data) // 2
    observation = Observation(
        {"front": arrays["front"][i], "wrist": arrays["wrist"][i]}, arrays["proprio"][i]
    )
    episode = policy.start(SkillRequest("pick", ("red_cube",)))
    action = policy.act([episode], [observation])[0]
    expected = arrays["action"][i]
    assert np.linalg.norm(action.position - expected[:3]) < 0.02
    assert action.gripper_width in policy.config.gripper_widths
    assert episode.step == 1


def _policy() -> BCPolicy:
    torch.manual_seed(0)
    config = BCConfig(
        skills=("pick", "push"),
        vocabulary=("<none>", "red_cube", "near_left"),
        image_size=(32, 32),
        **TINY,
    )
    return BCPolicy(BCNetwork(config), torch.device("cpu"))


def _observation(policy: BCPolicy, seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    images = {cam: rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for cam in policy.cameras}
    return Observation(images, _state((0.4 + 0.01 * seed, 0.0, 0.3)))


def test_batched_steps_equal_single_steps() -> None:
    policy = _policy()
    requests = [SkillRequest("pick", ("red_cube",)), SkillRequest("push", ("red_cube", "near_left"))]
    observations = [_observation(policy, 1), _observation(policy, 2)]
    batched = policy.act([policy.start(r) for r in requests], observations)
    for request, observation, expected in zip(requests, observations, batched, strict=True):
        single = policy.act([policy.start(request)], [observation])[0]
        np.testing.assert_allclose(single.position, expected.position, atol=1e-5)
        assert single.is_finite()


def test_bad_requests_and_observations_are_refused_with_reasons() -> None:
    policy = _policy()
    with pytest.raises(PolicyError, match="unknown skill 'fly'"):
        policy.start(SkillRequest("fly"))
    with pytest.raises(PolicyError, match="unknown arguments"):
        policy.start(SkillRequest("pick", ("purple_cone",)))
    with pytest.raises(PolicyError, match="goal image"):
        policy.start(SkillRequest("pick", ("red_cube",), goal_image=np.zeros((32, 32), np.float32)))
    episode = policy.start(SkillRequest("pick", ("red_cube",)))
    good = _observation(policy)
    with pytest.raises(PolicyError, match="front image: expected RGB uint8"):
        policy.act([episode], [Observation({**good.images, "front": np.zeros((32, 32, 3))}, good.state)])
    with pytest.raises(PolicyError, match="no 'wrist' image"):
        policy.act([episode], [Observation({"front": good.images["front"]}, good.state)])
    state = good.state.copy()
    state[9] = np.nan
    with pytest.raises(PolicyError, match="state"):
        policy.act([episode], [Observation(good.images, state)])
    with_goal = policy.start(SkillRequest("pick", ("red_cube",), goal_image=good.images["front"]))
    assert policy.act([with_goal], [good])[0].is_finite()


def test_missing_corrupt_and_foreign_checkpoints_fail_loudly(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        load_policy(tmp_path / "absent.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00\x01not a safetensors file" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_policy(corrupt)
    classifier = save_classifier(
        PredicateClassifier(ClassifierConfig(atoms=("(hand_empty)",), image_size=(16, 16), channels=8)),
        tmp_path / "classifier.safetensors",
    )
    with pytest.raises(CheckpointError, match="not a policy"):
        load_policy(classifier)
    policy = _policy()
    path = save_bc_policy(policy.network, tmp_path / "p.safetensors")
    tensors = load_file(str(path))
    tensors["trunk.0.weight"][0, 0] = float("nan")
    from safetensors.torch import safe_open, save_file

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_policy(path)


def test_spatial_softmax_finds_a_bright_spot() -> None:
    from meta_robot.learning.nets import SpatialSoftmax

    pool = SpatialSoftmax()
    with torch.no_grad():
        pool.log_temperature.fill_(-3.0)  # sharp
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 2, 6] = 10.0  # row 2 of 9 -> y = -0.5; column 6 -> x = 0.5
    y_coord, x_coord = pool(x)[0].tolist()
    assert y_coord == pytest.approx(-0.5, abs=1e-3) and x_coord == pytest.approx(0.5, abs=1e-3)
