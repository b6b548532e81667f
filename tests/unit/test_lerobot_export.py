"""LeRobot v3.0 export of small real episodes, read back with pyarrow, and the format validator
(which checks the documented format; lerobot itself cannot be installed beside this torch)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from episode_factory import write_dataset

from meta_robot.dataset.lerobot import (
    LeRobotFormatError,
    export_lerobot,
    read_tasks,
    validate_lerobot_dataset,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("episodes")
    write_dataset(root)
    out = tmp_path_factory.mktemp("export") / "lerobot"
    result = export_lerobot(root, out, fps=10, image_size=(24, 20), progress=False)
    return root, result


def test_export_writes_the_v3_layout(exported):
    _, result = exported
    out = result.path
    assert (result.episodes, result.frames) == (3, 36)
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "franka" and info["fps"] == 10
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 36, 3)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] is None
    features = info["features"]
    assert features["observation.images.front"] == {
        "dtype": "image",
        "shape": [24, 20, 3],
        "names": ["height", "width", "channels"],
    }
    assert (
        features["observation.state"]["shape"] == [15] and len(features["observation.state"]["names"]) == 15
    )
    assert features["action"]["shape"] == [8] and features["action"]["dtype"] == "float32"
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert features[key]["shape"] == [1]
    assert read_tasks(out) == ["pick red_cube", "pick blue_cube", "open drawer"]
    for name in ("meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet"):
        assert (out / name).is_file()


def test_parquet_reads_back_with_the_right_shapes(exported):
    _, result = exported
    table = pq.read_table(result.path / "data/chunk-000/file-000.parquet")
    assert table.num_rows == 36
    assert table["index"].to_pylist() == list(range(36))
    state = np.array(table["observation.state"].to_pylist(), dtype=np.float32)
    action = np.array(table["action"].to_pylist(), dtype=np.float32)
    assert state.shape == (36, 15) and action.shape == (36, 8)
    cell = table["observation.images.wrist"][0].as_py()
    image = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(cell["bytes"], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    assert image.shape == (24, 20, 3)
    assert image[0, 0, 0] == 255 - 4  # the wrist camera's frame 4 is the latest at 0.3 s (first command)
    episodes = pq.read_table(result.path / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == [
        (0, 17),
        (17, 29),
        (29, 36),
    ]
    assert [e["tasks"] for e in episodes] == [["pick red_cube"], ["pick blue_cube"], ["open drawer"]]
    assert np.array(episodes[0]["stats/observation.images.front/mean"]).shape == (3, 1, 1)
    assert episodes[1]["stats/action/count"] == [12]
    done = table["next.done"].to_pylist()
    success = table["next.success"].to_pylist()
    assert [i for i, d in enumerate(done) if d] == [16, 28, 35]
    assert [i for i, s in enumerate(success) if s] == [16, 35]  # the failed episode never succeeds
    assert sum(table["complementary_info.is_intervention"].to_pylist()) == 3
    stats = json.loads((result.path / "meta/stats.json").read_text())
    assert stats["action"]["count"] == [36]
    assert np.allclose(stats["action"]["mean"], action.mean(axis=0), atol=1e-5)
    assert np.allclose(stats["observation.state"]["std"], state.std(axis=0), atol=1e-4)
    assert np.array(stats["observation.images.wrist"]["max"]).shape == (3, 1, 1)


def test_validator_accepts_the_export(exported):
    _, result = exported
    summary = validate_lerobot_dataset(result.path)
    assert summary["episodes"] == 3 and summary["frames"] == 36 and summary["images_checked"] == 72


def _break(result, tmp_path, edit) -> object:
    copy = tmp_path / "broken"
    shutil.copytree(result.path, copy)
    edit(copy)
    return copy


def test_validator_finds_inconsistent_metadata(exported, tmp_path):
    _, result = exported

    def wrong_total(root):
        info = json.loads((root / "meta/info.json").read_text())
        info["total_frames"] = 40
        info["features"]["action"]["shape"] = [7]
        (root / "meta/info.json").write_text(json.dumps(info))

    with pytest.raises(LeRobotFormatError, match="total_frames 40") as error:
        validate_lerobot_dataset(_break(result, tmp_path, wrong_total))
    assert "action" in str(error.value)


def test_validator_finds_broken_episode_boundaries_and_images(exported, tmp_path):
    _, result = exported

    def shift_and_corrupt(root):
        path = root / "meta/episodes/chunk-000/file-000.parquet"
        table = pq.read_table(path)
        ends = table["dataset_to_index"].to_pylist()
        ends[0] -= 1
        table = table.set_column(
            table.schema.get_field_index("dataset_to_index"), "dataset_to_index", pa.array(ends)
        )
        pq.write_table(table, path)
        data_path = root / "data/chunk-000/file-000.parquet"
        data = pq.read_table(data_path)
        cells = data["observation.images.front"].to_pylist()
        cells[5] = {"bytes": b"not a png", "path": None}
        column = pa.array(cells, type=data.schema.field("observation.images.front").type)
        data = data.set_column(
            data.schema.get_field_index("observation.images.front"), "observation.images.front", column
        )
        pq.write_table(data, data_path)

    with pytest.raises(LeRobotFormatError) as error:
        validate_lerobot_dataset(_break(result, tmp_path, shift_and_corrupt))
    message = str(error.value)
    assert "episode 0: length 17 does not match its index range" in message
    assert "observation.images.front row 5: no decodable image bytes" in message


def test_export_filters_and_refuses_to_overwrite(exported, tmp_path):
    root, _ = exported
    picks = export_lerobot(root, tmp_path / "picks", skills=["pick"], only_successful=True, progress=False)
    assert (picks.episodes, picks.frames, picks.tasks) == (1, 17, ["pick red_cube"])
    info = json.loads((picks.path / "meta/info.json").read_text())
    assert info["features"]["observation.images.front"]["shape"] == [32, 32, 3]  # as recorded
    validate_lerobot_dataset(picks.path)
    with pytest.raises(FileExistsError):
        export_lerobot(root, picks.path, progress=False)
    with pytest.raises(ValueError, match="no finished episodes"):
        export_lerobot(root, tmp_path / "none", skills=["stack"], progress=False)
    with pytest.raises(ValueError, match="integer fps"):
        export_lerobot(root, tmp_path / "bad_fps", fps=7.5, progress=False)
