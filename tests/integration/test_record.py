"""``meta-robot record`` end to end: scripted operator -> teleop -> safety -> sim bridge, recorded by
the recorder, read back, exported to LeRobot's format and replayed into the sim."""

from __future__ import annotations

import pytest
import yaml

from meta_robot.apps.data_collection import record
from meta_robot.apps.replay import replay_episode
from meta_robot.dataset.episodes import list_episodes, read_messages
from meta_robot.dataset.lerobot import export_lerobot, validate_lerobot_dataset
from meta_robot.dataset.verify import check_episode

pytestmark = pytest.mark.integration


def test_recorded_demonstration_reads_back_exports_and_replays(tmp_path):
    out = tmp_path / "episodes"
    (report,) = record(
        ["pick"], 1, out, arguments=["red_cube"], camera_rate=10.0, progress=False, log_dir=tmp_path / "logs"
    )
    assert report.episodes == 1 and report.successes == 1, report

    (episode,) = list_episodes(out)
    meta = yaml.safe_load((episode.path / "episode.yaml").read_text())
    assert (meta["skill"], meta["arguments"], meta["outcome"], meta["operator"]) == (
        "pick",
        ["red_cube"],
        "success",
        "scripted",
    )
    assert meta["complete"] and meta["seed"] == 1000
    # the demonstration went through the teleop path: operator input in, teleop's commands out
    counts = {topic: info["count"] for topic, info in meta["topics"].items()}
    for topic in (
        "/teleop/operator_input",
        "/robot_command",
        "/joint_states",
        "/camera/color/image_raw",
        "/wrist_camera/color/image_raw",
        "/sim/object_states",
    ):
        assert counts.get(topic, 0) > 0, (topic, counts)
    sources = {msg.source for _, _, msg in read_messages(episode, ["/robot_command"])}
    assert sources == {"teleop/scripted"}  # teleop names the device that sent the input
    # both readers agree with the recorder's counts
    check = check_episode(episode)
    assert check.ok and check.recorded == counts, str(check)

    result = export_lerobot(out, tmp_path / "lerobot", fps=10, progress=False)
    summary = validate_lerobot_dataset(result.path)
    assert "1 episode" in str(summary) or getattr(summary, "episodes", 1) == 1

    replayed = replay_episode(episode.path, log_dir=tmp_path / "replay_logs")
    assert replayed.commands == counts["/robot_command"]
    assert replayed.final_error < 0.02, str(replayed)


def test_a_whole_task_is_recorded_as_one_episode_of_several_skills(tmp_path):
    """``meta-robot record --task``: the plan's skills run one after another in one episode, whose
    metadata names the task and whose outcome is the goal judged on privileged state."""
    from meta_robot.apps.task_recording import record_tasks

    out = tmp_path / "tasks"
    (report,) = record_tasks(
        ["close_up"], 1, out, camera_rate=10.0, progress=False, log_dir=tmp_path / "logs"
    )
    assert report.episodes == 1 and report.successes == 1 and report.skills == 5, report
    (episode,) = list_episodes(out)
    meta = yaml.safe_load((episode.path / "episode.yaml").read_text())
    assert (meta["task"], meta["skill"], meta["outcome"]) == ("close_up", "", "success")
    assert check_episode(episode).ok


def test_a_graph_node_that_dies_at_start_up_is_reported_at_once_with_its_log(tmp_path):
    """Waiting for the sim's services, a session names the node that died, its exit code and its
    last log lines, instead of timing out on a service that will never come."""
    import os
    from pathlib import Path

    from meta_robot.apps.sim_session import SimSession
    from meta_robot.ros.background import BackgroundNode
    from meta_robot.ros.graph import NodeSpec
    from meta_robot.ros.launcher import GraphProcesses

    stand_ins = str(Path(__file__).parents[1] / "unit")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([stand_ins, os.environ.get("PYTHONPATH", "")])}
    specs = [NodeSpec("crashing_bridge", "sim_bridge", "sleeping_node")]
    with (
        GraphProcesses(specs, env, log_dir=tmp_path) as graph,
        BackgroundNode("meta_robot_test_session") as ros,
        pytest.raises(
            RuntimeError, match=r"(?s)crashing_bridge exited with code 3.*simulated start-up failure"
        ),
    ):
        SimSession(graph, ros, timeout=600.0)
