"""Fixtures that start real simulators as separate processes on loopback addresses."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from meta_robot.ros.launcher import terminate

# Headless MuJoCo rendering (as run.sh sets it) for in-process renderers and the nodes started here:
# mujoco picks its GL backend when it is first imported, before any test module could set it.
os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="module")
def franky_sim_address():
    """franky-sim (MuJoCo FR3 speaking libfranka's protocol) on a loopback address of this test run."""
    address = f"127.0.{40 + os.getpid() % 200}.{1 + int(time.time() * 1000) % 250}"
    cmd = [sys.executable, "-m", "franky_sim.run_server", "-s", "mujoco", "--hostname", address]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        lines = []
        while proc.stdout is not None:
            line = proc.stdout.readline()
            lines.append(line)
            if "Connect to the server" in line:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"franky-sim did not start on {address}:\n{''.join(lines)}")
        yield address
    finally:
        terminate(proc)
