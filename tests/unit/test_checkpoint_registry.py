"""The checkpoint manifest: shipping a run, resolving names with digest checks, clear refusals."""

from __future__ import annotations

import pytest
import yaml

from meta_robot.learning.checkpoint_registry import load_manifest, resolve_checkpoint, ship_checkpoint
from meta_robot.learning.checkpoints import CheckpointError


def _run(folder, content: bytes = b"weights"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.safetensors").write_bytes(content)
    record = {
        "command": "meta-robot train policy --data d",
        "data": {"root": "d", "episodes": {"train": ["a", "b"]}},
    }
    (folder / "policy.yaml").write_text(yaml.safe_dump(record))
    return folder


def test_a_shipped_run_resolves_by_name_and_keeps_its_provenance(tmp_path) -> None:
    shipped = tmp_path / "checkpoints"
    entry = ship_checkpoint("bc", "policy", _run(tmp_path / "run"), {"pick": 0.9}, directory=shipped)
    assert entry.command == "meta-robot train policy --data d"
    assert "2 episodes" in entry.data
    assert resolve_checkpoint("bc", "policy", shipped) == shipped / "bc" / "policy.safetensors"
    assert (shipped / "bc" / "policy.yaml").is_file()
    # shipping again merges scores; another entry leaves the first alone
    ship_checkpoint("bc", "policy", _run(tmp_path / "run"), {"push": 0.5}, directory=shipped)
    ship_checkpoint("bc2", "policy", _run(tmp_path / "run2", b"other"), directory=shipped)
    entries = load_manifest(shipped)
    assert entries["bc"].scores == {"pick": 0.9, "push": 0.5} and set(entries) == {"bc", "bc2"}


def test_a_tampered_file_an_unknown_name_and_a_wrong_kind_are_refused(tmp_path) -> None:
    shipped = tmp_path / "checkpoints"
    ship_checkpoint("bc", "policy", _run(tmp_path / "run"), directory=shipped)
    (shipped / "bc" / "policy.safetensors").write_bytes(b"weightz")
    with pytest.raises(CheckpointError, match="does not match the manifest's SHA-256"):
        resolve_checkpoint("bc", "policy", shipped)
    with pytest.raises(CheckpointError, match=r"no policy checkpoint named 'nope'.*\['bc'\]"):
        resolve_checkpoint("nope", "policy", shipped)
    with pytest.raises(CheckpointError, match="is a policy, not a classifier"):
        resolve_checkpoint("bc", "classifier", shipped)
    with pytest.raises(CheckpointError, match="no policy checkpoint given"):
        resolve_checkpoint("", "policy", shipped)
    with pytest.raises(CheckpointError, match="no checkpoint manifest"):
        resolve_checkpoint("bc", "policy", tmp_path / "elsewhere")
    with pytest.raises(CheckpointError, match="missing"):
        ship_checkpoint("x", "policy", tmp_path / "not_a_run", directory=shipped)


def test_a_path_is_taken_as_it_is(tmp_path) -> None:
    path = tmp_path / "some" / "policy.safetensors"
    assert resolve_checkpoint(str(path), "policy") == path
