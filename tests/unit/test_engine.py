"""The data engine: episode files, the expert and its shadow, rendering from stored states, workers."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from meta_robot.engine import store
from meta_robot.engine.collect import collect, skill_jobs
from meta_robot.engine.render import CameraRig, load_frames
from meta_robot.engine.simulation import EngineSim
from meta_robot.engine.workers import WorkerPool
from meta_robot.skills.registry import RegistryError, load_registry

SEED = 1003


@pytest.fixture(scope="module")
def sim() -> EngineSim:
    return EngineSim(image_size=(64, 64))


@pytest.fixture(scope="module")
def demo(sim):
    return sim.run_expert(sim.registry.ground("pick", ["red_cube"]), SEED)


def test_a_demonstration_stores_one_state_per_control_step(sim, demo):
    assert demo.meta.success and demo.meta.source == "expert"
    assert demo.meta.model_fingerprint == sim.fingerprint
    np.testing.assert_allclose(np.diff(demo.time), 0.1, atol=1e-9)  # the schema's 10 Hz
    assert demo.physics.shape == (len(demo), 96) and demo.state.shape == (len(demo), 15)
    np.testing.assert_array_equal(demo.action, demo.expert_action)
    assert not demo.learner_acting.any()
    assert demo.meta.style["speed"] > 0  # the operator's draws travel with the episode


def test_the_shadow_expert_labels_its_own_demonstration_with_its_own_actions(sim, demo):
    """The DAgger labeller, run along the expert's own trajectory (it executes every step), answers
    each state with exactly the action the demonstration commanded there, and the world is the same."""
    rollout = sim.start_learner(sim.registry.ground("pick", ["red_cube"]), SEED, expert_share=1.0)
    while not rollout.done:
        rollout.step(None)
    shadow = rollout.episode()
    assert shadow.meta.success
    n = min(len(demo), len(shadow))
    assert n > 30
    np.testing.assert_array_equal(shadow.expert_action[:n], demo.action[:n])
    np.testing.assert_array_equal(shadow.physics[:n, 1:], demo.physics[:n, 1:])  # [0] is the sim clock
    np.testing.assert_array_equal(shadow.state[:n], demo.state[:n])


def test_frames_rendered_from_stored_states_are_the_frames_a_learner_saw_live(sim):
    rollout = sim.start_learner(sim.registry.ground("open_drawer", []), SEED, expert_share=1.0)
    live = []
    for _ in range(12):
        live.append(rollout.observe().images)
        rollout.step(None)
    episode = rollout.episode()
    rendered = CameraRig(sim.workcell, (64, 64)).render_states(episode.physics)
    for t, images in enumerate(live):
        np.testing.assert_array_equal(rendered[t, 0], images["front"])
        np.testing.assert_array_equal(rendered[t, 1], images["wrist"])


def test_the_expert_starts_over_when_the_learner_loses_the_grasp(sim):
    ground = sim.registry.ground("place_in_drawer", ["red_cube"])
    rollout = sim.start_learner(ground, SEED, expert_share=1.0)
    while not rollout.expert._current or not rollout.expert._current.needs_grasp:
        rollout.step(None)  # carrying the cube
    assert rollout.expert.restarts == 0
    sim.workcell.perturb("red_cube", np.array([0.0, 0.0, -0.1]))  # snatched out of the fingers
    for _ in range(6):
        rollout.step(None)
    assert rollout.expert.restarts == 1


def test_episode_files_round_trip_and_bad_ones_are_named(tmp_path, demo):
    path = store.write_episode(tmp_path, demo)
    back = store.read_episode(path)
    np.testing.assert_array_equal(back.physics, demo.physics)
    assert back.meta == demo.meta
    assert store.episode_files(tmp_path) == [path]

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(store.EpisodeFileError, match=r"truncated\.npz: corrupt"):
        store.read_episode(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(store.EpisodeFileError, match="not an engine episode"):
        store.read_episode(foreign)


def test_a_full_disk_is_a_clear_error_and_leaves_no_half_file(tmp_path, demo, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="disk full"):
        store.write_episode(tmp_path, demo)
    assert not list(tmp_path.rglob("*.npz")) and not list(tmp_path.rglob("*.tmp*"))


def test_frames_at_another_resolution_are_refused(tmp_path):
    frames = tmp_path / "frames.npy"
    np.save(frames, np.zeros((5, 2, 32, 32, 3), np.uint8))
    with pytest.raises(store.EpisodeFileError, match=r"render the dataset at \(64, 64\)"):
        load_frames(frames, 5, (64, 64))


def test_unknown_skills_are_refused_with_the_known_ones():
    with pytest.raises(RegistryError, match="open_drawer"):
        skill_jobs(load_registry(), ["fly"], 3)
    with pytest.raises(RegistryError):
        collect("unused", ["fly"], 1, workers=1, progress=False)


def _init(arg):
    return arg


def _job(state, job):
    if job == "crash":
        os._exit(3)  # a native crash: the process is gone without a word
    if job == "raise":
        raise ValueError("bad job")
    return state + job


def test_a_worker_that_dies_loses_only_its_job_and_the_pool_goes_on():
    jobs = ["a", "crash", "b", "raise", "c", "d"]
    with WorkerPool(2, _init, "x", _job) as pool:
        results = {r.job: r for r in pool.map(jobs)}
    assert {j: r.value for j, r in results.items() if r.ok} == {"a": "xa", "b": "xb", "c": "xc", "d": "xd"}
    assert results["crash"].crashed and "exit code 3" in results["crash"].error
    assert not results["raise"].crashed and "ValueError: bad job" in results["raise"].error


def test_an_engine_dataset_exports_to_lerobot_like_a_recorded_one(tmp_path, demo):
    from meta_robot.dataset.lerobot import export_lerobot, validate_lerobot_dataset

    root = tmp_path / "engine"
    store.write_episode(root, demo)
    result = export_lerobot(root, tmp_path / "lerobot", fps=10, progress=False)
    assert result.episodes == 1 and result.frames == len(demo) and result.tasks == ["pick red_cube"]
    info = validate_lerobot_dataset(tmp_path / "lerobot")
    assert info["frames"] == len(demo) and info["images_checked"] > 0
    with pytest.raises(ValueError, match="10 Hz"):
        export_lerobot(root, tmp_path / "other", fps=5, progress=False)


def test_the_true_scene_is_read_from_stored_states_without_simulating(sim, demo):
    """The auxiliary target of the policy's image features: object poses and the drawer per step."""
    from meta_robot.engine.privileged import privileged_names, privileged_state
    from meta_robot.sim import snapshot
    from meta_robot.sim.workcell import Workcell
    from meta_robot.skills.scripted_operator import yaw_of

    wc = Workcell()
    scene = privileged_state(wc.model, demo.physics)
    names = privileged_names(wc.model)
    assert scene.shape == (len(demo), len(names)) and scene.dtype == np.float32
    for t in (0, len(demo) // 2, len(demo) - 1):
        snapshot.restore(wc.model, wc.data, demo.physics[t])
        for obj in wc.object_states():
            x = names.index(f"{obj.name}.x")
            np.testing.assert_allclose(scene[t, x : x + 3], obj.position, atol=1e-6)
            yaw = yaw_of(obj.orientation)
            np.testing.assert_allclose(scene[t, x + 3 : x + 5], [np.cos(2 * yaw), np.sin(2 * yaw)], atol=1e-5)
        drawer = wc.data.qpos[wc.model.joint("drawer_slide").qposadr[0]]
        assert scene[t, names.index("drawer_slide.position")] == pytest.approx(drawer, abs=1e-6)
    cube = names.index("red_cube.z")
    assert scene[-1, cube] > scene[0, cube] + 0.03  # the demonstration lifted the cube


def test_a_policy_trained_on_engine_data_learns_the_scene_and_serves_without_it(tmp_path, sim, demo):
    import torch

    from meta_robot.engine.dataset import EngineDataset
    from meta_robot.learning.policy import SkillRequest, load_policy
    from meta_robot.learning.train_policy import PolicyTrainSettings, fit_policy

    torch.set_num_threads(1)
    root = tmp_path / "engine"
    store.write_episode(root, demo)
    for seed in (SEED + 1, SEED + 2):
        store.write_episode(root, sim.run_expert(sim.registry.ground("pick", ["red_cube"]), seed))
    dataset = EngineDataset(root, progress=False, render_workers=1)
    assert dataset.arrays()["privileged"].shape == (len(dataset), 16)
    settings = PolicyTrainSettings(epochs=1, batch_size=32, held_out_fraction=0.34)
    result = fit_policy(dataset, tmp_path / "run", settings, progress=False, data_summary={})
    assert result.metrics["held_out_object_cm"] > 0  # the auxiliary head was trained and scored
    policy = load_policy(result.weights, "cpu")
    assert policy.config.aux_dim == 16
    rollout = sim.start_learner(sim.registry.ground("pick", ["red_cube"]), SEED)
    episode = policy.start(SkillRequest("pick", ("red_cube",)))
    (action,) = policy.act([episode], [rollout.observe()])
    assert np.isfinite(action.position).all()
    no_aux = fit_policy(
        dataset,
        tmp_path / "plain",
        PolicyTrainSettings(epochs=1, batch_size=32, held_out_fraction=0.34, aux_weight=0),
        progress=False,
        data_summary={},
    )
    assert "held_out_object_cm" not in no_aux.metrics and load_policy(no_aux.weights).config.aux_dim == 0


def test_an_engine_episode_exports_to_rosbag2_and_reads_back_as_a_recording(tmp_path, sim):
    """The recorded-episode tools read the export; resampled at the control rate it is the engine
    episode again (states, actions, the expert's takeovers, frames at the model's size)."""
    from meta_robot.dataset.episodes import list_episodes
    from meta_robot.dataset.frames import resample_episode
    from meta_robot.dataset.verify import check_episode
    from meta_robot.engine.export_bag import export_rosbag
    from meta_robot.learning.policy import Action

    rollout = sim.start_learner(sim.registry.ground("open_drawer", []), SEED, 0.0, 1, "dagger")
    for t in range(25):  # the learner holds still for 10 steps, then the expert takes over
        pose = rollout.state.tcp_pose
        rollout.step(Action(pose.position, pose.orientation, rollout.state.gripper_width) if t < 10 else None)
    episode = rollout.episode()
    assert episode.learner_acting[:10].all() and not episode.learner_acting[10:].any()
    root = tmp_path / "engine"
    store.write_episode(root, episode)
    report = export_rosbag(root, tmp_path / "bags", progress=False)
    assert len(report.episodes) == 1 and export_rosbag(root, tmp_path / "bags", progress=False).skipped == 1
    (recorded,) = list_episodes(tmp_path / "bags")
    check = check_episode(recorded)
    assert check.ok, check
    frames = resample_episode(recorded, fps=10, image_size=(64, 64))
    assert len(frames) == len(episode) and frames.skill == "open_drawer"
    np.testing.assert_allclose(frames.state, episode.state, atol=1e-6)
    np.testing.assert_allclose(frames.action, episode.action, atol=1e-6)
    np.testing.assert_array_equal(frames.intervention, ~episode.learner_acting)
    from meta_robot.dataset.info import dataset_info

    for folder in (root, tmp_path / "bags"):  # the same summary for the engine folder and its export
        info = dataset_info(folder).skills["open_drawer"]
        assert (info.episodes, info.interventions, info.frames) == (1, 1, len(episode)), folder
    rendered = CameraRig(sim.workcell, (64, 64)).render_states(episode.physics[:3])
    for c, camera in enumerate(("front", "wrist")):
        np.testing.assert_array_equal(frames.images[camera][:3], rendered[:, c])


def test_recordings_and_engine_episodes_train_one_policy_together(tmp_path, sim, demo):
    """The lab's mix: generated episodes plus robot recordings in one run; the auxiliary scene loss
    uses the engine's steps and skips the recordings' (unknown there)."""
    import torch
    import yaml
    from episode_factory import write_episode as write_recording

    from meta_robot.dataset.combined import CombinedDataset
    from meta_robot.dataset.torch_dataset import EpisodeDataset
    from meta_robot.engine.dataset import EngineDataset
    from meta_robot.learning.train_policy import train_policy

    torch.set_num_threads(1)
    engine = tmp_path / "engine"
    store.write_episode(engine, demo)
    for seed in (SEED + 1, SEED + 2):
        store.write_episode(engine, sim.run_expert(sim.registry.ground("pick", ["red_cube"]), seed))
    recorded = tmp_path / "recorded"
    for k in range(2):
        write_recording(recorded, f"rec{k}", skill="push", arguments=("red_cube", "near_left"))
    result = train_policy(
        [engine, recorded],
        tmp_path / "run",
        epochs=1,
        batch_size=32,
        held_out_fraction=0.34,
        progress=False,
        cache_dir=None,
        num_threads=1,
    )
    record = yaml.safe_load((tmp_path / "run" / "policy.yaml").read_text())
    assert record["data"]["root"] == f"{engine} + {recorded}"
    assert record["model"]["skills"] == ["pick", "push"] and record["model"]["aux_dim"] == 16
    assert set(record["data"]["episodes"]["train"]) >= {"rec0", "rec1"}
    assert np.isfinite(result.metrics["held_out_object_cm"])
    parts = [
        EngineDataset(engine, progress=False),
        EpisodeDataset(recorded, image_size=(32, 32), cache_dir=None),
    ]
    with pytest.raises(ValueError, match="image size"):
        CombinedDataset(parts)


def test_a_console_command_renders_headless_with_mujoco_gl_unset(tmp_path, demo):
    """Nobody has to set MUJOCO_GL: a command that renders works on a machine without a display."""
    import subprocess
    import sys
    from pathlib import Path

    store.write_episode(tmp_path / "engine", demo)
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    command = Path(sys.executable).parent / "meta-robot"
    result = subprocess.run(
        [
            str(command),
            "dataset",
            "export",
            str(tmp_path / "engine"),
            "--format",
            "rosbag2",
            "--out",
            str(tmp_path / "bags"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "exported 1 episodes" in result.stdout


def test_only_a_dagger_rollout_has_expert_takeovers(demo):
    """Whole tasks and demonstrations are the expert's throughout, evaluations the learner's: the
    export's interventions and dataset info's counts come from this one mask."""
    import dataclasses

    for source, learner in (("expert", False), ("task", False), ("eval", True)):
        episode = dataclasses.replace(
            demo,
            meta=dataclasses.replace(demo.meta, source=source),
            learner_acting=np.full(len(demo), learner),
        )
        assert not episode.expert_takeover.any(), source
    acting = np.arange(len(demo)) % 3 != 0
    dagger = dataclasses.replace(
        demo, meta=dataclasses.replace(demo.meta, source="dagger"), learner_acting=acting
    )
    np.testing.assert_array_equal(dagger.expert_takeover, ~acting)
