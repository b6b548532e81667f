"""The one graph description: specs, the command lines and parameter files built from them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from meta_robot.core import paths
from meta_robot.ros.graph import robot_graph, sim_graph
from meta_robot.ros.launcher import node_command, write_overrides


def test_sim_graph_runs_the_sim_bridge_with_its_parameters():
    (bridge,) = sim_graph("default", seed=7, real_time_factor=0.0, bridge_parameters={"camera_rate": 0.0})
    assert bridge.name == "sim_bridge" and bridge.full_name == "/sim_bridge"
    assert bridge.parameters["seed"] == 7 and bridge.parameters["camera_rate"] == 0.0
    assert bridge.parameters["use_sim_time"] is True  # flat out runs the graph on /clock
    assert all(p.is_file() for p in bridge.params_paths())


def test_robot_graph_keeps_enforce_by_default():
    driver, camera = robot_graph("172.16.0.2", namespace="r1")
    assert driver.parameters == {"robot_ip": "172.16.0.2", "realtime_config": "enforce"}
    assert driver.full_name == "/r1/franky_driver" and camera.full_name == "/r1/realsense_camera"


def test_node_command_and_overrides_use_the_full_node_name(tmp_path):
    (bridge,) = sim_graph("default", seed=3, namespace="/robot2")
    overrides = write_overrides(bridge, tmp_path)
    content = yaml.safe_load(overrides.read_text())
    assert content == {"/robot2/sim_bridge": {"ros__parameters": dict(bridge.parameters)}}
    cmd = node_command(bridge, overrides)
    assert cmd[1:3] == ["-m", "meta_robot.nodes.sim_bridge_node"]
    assert "__ns:=/robot2" in cmd and "__node:=sim_bridge" in cmd
    assert cmd[-1] == str(overrides)  # overrides come last so they win


def test_every_console_script_module_exists():
    import importlib.util
    import re

    setup = (paths.share_dir() / "setup.py").read_text()
    for module in re.findall(r'"(meta_robot\.[\w.]+):main"', setup):
        assert importlib.util.find_spec(module) is not None, module


def test_the_policy_commands_through_teleop_only_when_a_teleop_node_runs():
    alone = {s.name: s for s in sim_graph(policy="goal_conditioned_bc", classifier="success_classifier")}
    assert alone["policy_server"].parameters["command_topic"] == "robot_command"
    assert alone["success_classifier"].parameters["checkpoint"] == "success_classifier"
    behind = {s.name: s for s in sim_graph(teleop_device="spacemouse", policy="goal_conditioned_bc")}
    assert behind["policy_server"].parameters["command_topic"] == "policy/robot_command"
    assert "success_classifier" not in behind
    assert all(p.is_file() for s in alone.values() for p in s.params_paths())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_to_the_launcher_stops_every_node_it_started(tmp_path, sig):
    """What systemd, ``docker stop`` or closing the terminal send must stop the graph as Ctrl-C does,
    not end the launcher and leave its nodes (each in a session of its own) running."""
    here = Path(__file__).parent
    script = (
        "import os, sys\n"
        "from meta_robot.ros.graph import NodeSpec\n"
        "from meta_robot.ros.launcher import GraphProcesses\n"
        "specs = [NodeSpec(f'sleeper{i}', 'sleeper', 'sleeping_node') for i in range(2)]\n"
        "path = os.pathsep.join([sys.argv[1], os.environ.get('PYTHONPATH', '')])\n"
        "env = {**os.environ, 'PYTHONPATH': path}\n"
        "try:\n"
        "    with GraphProcesses(specs, env, log_dir=sys.argv[2]) as graph:\n"
        "        print(' '.join(str(p.pid) for p in graph.processes.values()), flush=True)\n"
        "        graph.wait()\n"
        "except KeyboardInterrupt as exc:\n"
        "    print(f'stopped: {exc}', flush=True)\n"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", script, str(here), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        pids = [int(p) for p in launcher.stdout.readline().split()]
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"sleeper{i}.log").read_text().strip() for i in range(2)):
            assert time.monotonic() < deadline, "the stand-in nodes did not start"
            time.sleep(0.1)
        launcher.send_signal(sig)
        assert launcher.wait(timeout=30) == 0
        assert f"received {sig.name}" in launcher.stdout.read()
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if launcher.poll() is None:
            launcher.kill()
