"""``meta-robot train skills`` end to end on a tiny setting, killed mid-run and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

TINY = [
    "--skills", "pick", "open_drawer",
    "--demos", "4",
    "--epochs", "2",
    "--dagger-rounds", "1",
    "--dagger-episodes", "1",
    "--dagger-epochs", "1",
    "--eval-episodes", "1",
    "--tasks", "close_up",
    "--task-episodes", "1",
    "--classifier-epochs", "1",
    "--workers", "2",
]  # fmt: skip


def _command(out) -> list[str]:
    return [sys.executable, "-m", "meta_robot.cli", "train", "skills", "--out", str(out), *TINY]


@pytest.mark.timeout(900)  # ~100 s on 2 idle cores; the whole pipeline, twice, in worker processes
def test_the_pipeline_runs_end_to_end_and_resumes_after_being_killed(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "MUJOCO_GL": "egl"}
    first = subprocess.Popen(_command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)  # fmt: skip
    stages = out / "stages.yaml"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        done = yaml.safe_load(stages.read_text()) if stages.is_file() else None
        if done and "render" in done["stages"]:
            break  # collected and rendered: the policy is training now
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    os.killpg(first.pid, signal.SIGKILL)  # the command and its workers, mid-stage
    first.wait()
    before = yaml.safe_load(stages.read_text())["stages"]
    episodes = sorted(p.name for p in (out / "data" / "episodes").rglob("*.npz"))

    second = subprocess.run(_command(out), env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    after = yaml.safe_load(stages.read_text())["stages"]
    for name in ("collect", "render"):
        assert after[name] == before[name]  # finished stages are not run again
    assert sorted(p.name for p in (out / "data" / "episodes" / "pick").glob("*expert*.npz")) == [
        e for e in episodes if e.startswith("pick") and "expert" in e
    ]
    report = yaml.safe_load((out / "report.yaml").read_text())
    assert set(report["evaluation"]["skills"]) == {"pick", "open_drawer"}
    assert all(v["episodes"] == 1 for v in report["evaluation"]["skills"].values())
    assert "(in_drawer red_cube)" in report["classifier"]["test"]
    assert (out / "report.png").stat().st_size > 10_000
    assert (out / "policy_round1" / "policy.safetensors").is_file()
    record = yaml.safe_load((out / "policy_round1" / "policy.yaml").read_text())
    assert "root" not in record["data"] and record["data"]["summary"]["pick"]["episodes"] >= 4  # no data path


def test_bad_settings_are_refused_before_any_work(tmp_path):
    from meta_robot.engine.pipeline import PipelineSettings, train_skills
    from meta_robot.skills.registry import RegistryError

    with pytest.raises(RegistryError, match="fly"):
        train_skills(tmp_path, PipelineSettings(skills=("fly",)), progress=False)
    with pytest.raises(ValueError, match="demos"):
        PipelineSettings(demos=1)
    assert not (tmp_path / "data").exists()
