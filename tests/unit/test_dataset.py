"""Dataset tools on small real episodes (rosbag2/MCAP folders written with rosbags, see
episode_factory): listing, reading, resampling, info, and the torch dataset."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml
from episode_factory import CAMERA_RATE, FIRST_COMMAND_S, START_NS, write_dataset, write_episode

from meta_robot.dataset.episodes import EpisodeError, list_episodes, load_episode, read_messages
from meta_robot.dataset.frames import resample_episode
from meta_robot.dataset.info import dataset_info, format_info, plot_info
from meta_robot.dataset.torch_dataset import EpisodeDataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("episodes")
    write_dataset(folder)
    return folder


def test_list_episodes_skips_open_and_unfinished_folders(root, tmp_path):
    shutil.copytree(root, tmp_path / "root")
    open_copy = tmp_path / "root" / ".open" / "20250101-130000-pick-0009"
    shutil.copytree(root / "20250101-120000-pick-0001", open_copy)
    (tmp_path / "root" / "not_an_episode").mkdir()
    episodes = list_episodes(tmp_path / "root")
    assert [e.episode_id for e in episodes] == [
        "20250101-120000-pick-0001",
        "20250101-120010-pick-0002",
        "20250101-120020-open-0003",
    ]
    assert [e.skill for e in list_episodes(root, skills=["open"])] == ["open"]
    first = episodes[0]
    assert first.metadata.arguments == ["red_cube"] and first.success is True
    assert episodes[1].success is False and len(episodes[1].metadata.interventions) == 1


def test_read_messages_yields_deserialized_messages_in_time_order(root):
    episode = list_episodes(root)[0]
    seen = list(read_messages(episode, ["/robot_command", "/joint_states"]))
    assert {topic for topic, _, _ in seen} == {"/robot_command", "/joint_states"}
    times = [t for _, t, _ in seen]
    assert times == sorted(times) and times[0] == START_NS
    command = next(msg for topic, _, msg in seen if topic == "/robot_command")
    assert command.pose.position.x == pytest.approx(0.5) and command.source == "test"


def test_missing_and_corrupt_episodes_raise_clear_errors(root, tmp_path):
    with pytest.raises(EpisodeError, match="no such folder"):
        load_episode(tmp_path / "nothing")
    broken = tmp_path / "broken"
    shutil.copytree(root / "20250101-120000-pick-0001", broken)
    mcap = next(broken.glob("*.mcap"))
    mcap.write_bytes(b"this is not an mcap file" * 10)
    with pytest.raises(EpisodeError, match="cannot read the recording"):
        list(read_messages(load_episode(broken)))
    (broken / "episode.yaml").write_text("format: something-else\nepisode_id: x\n")
    with pytest.raises(EpisodeError, match=r"corrupt episode\.yaml"):
        load_episode(broken)
    # list_episodes skips the unreadable folder (or raises when strict)
    shutil.copytree(broken, tmp_path / "root" / "20250101-000000-pick-0000")
    assert list_episodes(tmp_path / "root") == []
    with pytest.raises(EpisodeError, match="corrupt"):
        list_episodes(tmp_path / "root", strict=True)


def test_resample_aligns_streams_and_actions(root):
    frames = resample_episode(list_episodes(root)[0], fps=10.0)
    # steps from the first command (0.3 s) while a whole step fits before the last message (2.0 s)
    assert len(frames) == 17
    t = (frames.timestamps_ns - START_NS) * 1e-9
    assert t[0] == pytest.approx(FIRST_COMMAND_S) and np.allclose(np.diff(t), 0.1)
    assert frames.images["front"].shape == (17, 32, 32, 3) and frames.images["front"].dtype == np.uint8
    # the latest front image at or before each step (written 1 us after its nominal time)
    expected_frame = np.floor(t * CAMERA_RATE - 1e-6).astype(int)
    assert np.array_equal(frames.images["front"][:, 0, 0, 0], expected_frame)
    assert np.array_equal(frames.images["front"][:, 0, 0, 1], (expected_frame * 7) % 256)
    assert np.array_equal(frames.images["wrist"][:, 0, 0, 0], 255 - expected_frame)
    # proprio: joints (joint i at 0.1 i + t), gripper width, TCP pose
    assert frames.state.shape == (17, 15)
    assert np.allclose(frames.state[:, 0], t, atol=1e-5) and np.allclose(
        frames.state[:, 6], 0.6 + t, atol=1e-5
    )
    assert np.allclose(frames.state[:, 7], 0.08 - 0.01 * t, atol=1e-6)
    assert np.allclose(frames.state[:, 8], 0.4 + 0.01 * t, atol=1e-6)
    assert np.allclose(frames.state[:, 11:15], [1, 0, 0, 0])
    # action: the last command issued before the next step (commands at 20 Hz from 0.3 s, x = 0.5 + 0.01 k)
    last_command = np.round((t + 0.1 - FIRST_COMMAND_S) * 20).astype(int) - 1
    assert np.allclose(frames.action[:, 0], 0.5 + 0.01 * last_command, atol=1e-6)
    assert np.allclose(frames.action[:, 1:3], [0.1, 0.2]) and np.allclose(frames.action[:, 7], 0.04)
    assert frames.skill == "pick" and frames.arguments == ["red_cube"] and frames.success is True
    assert not frames.intervention.any()


def test_resample_options_and_interventions(root):
    episodes = list_episodes(root)
    small = resample_episode(episodes[0], fps=5.0, image_size=(16, 8))
    assert len(small) == 8 and small.images["wrist"].shape == (8, 16, 8, 3)
    corrected = resample_episode(episodes[1])
    t = (corrected.timestamps_ns - corrected.timestamps_ns[0]) * 1e-9 + FIRST_COMMAND_S
    # intervention from 0.6 s to 0.9 s: the steps starting at 0.6, 0.7, 0.8 s
    assert np.allclose(t[corrected.intervention], [0.6, 0.7, 0.8])
    assert corrected.success is False


def test_episode_without_commands_is_an_error(tmp_path):
    folder = write_episode(tmp_path, "20250101-000000-pick-0001", duration_s=0.2)  # ends before 1st command
    with pytest.raises(EpisodeError, match="/robot_command"):
        resample_episode(load_episode(folder))


def test_dataset_info_table_and_plot(root, tmp_path):
    info = dataset_info(root)
    assert list(info.skills) == ["open", "pick"]
    pick = info.skills["pick"]
    assert (pick.episodes, pick.successes, pick.failures, pick.success_rate) == (2, 1, 1, 0.5)
    assert (pick.min_duration_s, pick.max_duration_s, pick.mean_duration_s) == (1.5, 2.0, 1.75)
    assert pick.interventions == 1 and pick.episodes_with_interventions == 1
    assert info.total.episodes == 3 and info.total.frames == 17 + 12 + 7
    table = format_info(info)
    assert "pick" in table and "50%" in table and "36" in table
    png = plot_info(info, tmp_path / "info.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_episode_dataset_items_vocabularies_and_cache(root, tmp_path):
    shutil.copytree(root, tmp_path / "root", ignore=shutil.ignore_patterns(".cache"))
    dataset = EpisodeDataset(tmp_path / "root", image_size=(16, 16))
    assert len(dataset) == 36
    assert dataset.skills == ["open", "pick"]
    assert dataset.argument_vocabulary == ["<none>", "blue_cube", "drawer", "red_cube"]
    item = dataset[dataset.episode_steps(1)[3]]
    assert item["front"].shape == (3, 16, 16) and item["front"].dtype == torch.float32
    assert item["front"].min() >= 0.0 and item["front"].max() <= 1.0
    assert item["proprio"].shape == (15,) and item["action"].shape == (8,)
    assert item["skill"] == dataset.skills.index("pick") and item["episode"] == 1 and item["step"] == 3
    assert item["arguments"].tolist() == [dataset.argument_vocabulary.index("blue_cube")]
    assert item["success"] == 0 and bool(item["intervention"])
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=5)))
    assert batch["wrist"].shape == (5, 3, 16, 16)

    # Decoded episodes are cached as npz: a second dataset needs no bag at all.
    for mcap in (tmp_path / "root").glob("*/*.mcap"):
        mcap.unlink()
    cached = EpisodeDataset(tmp_path / "root", image_size=(16, 16), skills=["pick"], uint8_images=True)
    assert len(cached) == 29 and cached[0]["front"].dtype == torch.uint8
    assert torch.equal(cached[0]["front"], (dataset[0]["front"] * 255).round().to(torch.uint8))

    only_successful = EpisodeDataset(root, image_size=(16, 16), only_successful=True, cache_dir=None)
    assert len(only_successful) == 17 + 7


def test_relabelled_outcome_invalidates_the_cache(root, tmp_path):
    shutil.copytree(root, tmp_path / "root", ignore=shutil.ignore_patterns(".cache"))
    assert EpisodeDataset(tmp_path / "root", image_size=(8, 8), skills=["open"])[0]["success"] == 1
    meta_file = tmp_path / "root" / "20250101-120020-open-0003" / "episode.yaml"
    meta = yaml.safe_load(meta_file.read_text())
    meta["outcome"] = "failure"
    meta_file.write_text(yaml.safe_dump(meta))
    assert EpisodeDataset(tmp_path / "root", image_size=(8, 8), skills=["open"])[0]["success"] == 0


def test_reading_a_topic_the_episode_does_not_hold_yields_nothing(root):
    episode = list_episodes(root)[0]
    assert list(read_messages(episode, ["/not/recorded"])) == []
    assert {t for t, _, _ in read_messages(episode, ["/not/recorded", "/joint_states"])} == {"/joint_states"}
