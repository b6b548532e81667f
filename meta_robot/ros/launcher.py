"""Start a node graph as supervised processes where ``ros2 launch`` is not installed.

Each node runs as ``python -m <module> --ros-args ...`` with the loopback DDS environment (see
:mod:`meta_robot.ros.environment`), its parameter files, and a generated file with the overrides. If any node
exits, the others are stopped too: a half-running graph (a camera without a driver, a driver without
its commander) is worse than a stopped one, and every driver holds the arm when its commands stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from meta_robot.ros.graph import NodeSpec

logger = logging.getLogger(__name__)


def node_command(spec: NodeSpec, overrides_file: Path | None) -> list[str]:
    """The command line that starts ``spec`` as a process."""
    cmd = [sys.executable, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace.strip("/"):
        cmd += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    for path in spec.params_paths():
        cmd += ["--params-file", str(path)]
    if overrides_file is not None:
        cmd += ["--params-file", str(overrides_file)]
    return cmd


def write_overrides(spec: NodeSpec, folder: Path) -> Path | None:
    """A params file holding ``spec.parameters`` under the node's full name, or None if empty."""
    if not spec.parameters:
        return None
    path = folder / f"{spec.full_name.strip('/').replace('/', '__')}.yaml"
    path.write_text(yaml.safe_dump({spec.full_name: {"ros__parameters": dict(spec.parameters)}}))
    return path


class GraphProcesses:
    """A running graph: start, check, stop. Use as a context manager so nodes never outlive it."""

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        env: Mapping[str, str],
        log_dir: Path | None = None,
    ) -> None:
        self.specs = list(specs)
        self.env = dict(env)
        self._tmp = tempfile.TemporaryDirectory(prefix="meta_robot_graph_")
        self.log_dir = Path(log_dir) if log_dir is not None else Path(self._tmp.name)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list = []

    def start(self) -> GraphProcesses:
        """Start every node; their output goes to ``<log_dir>/<node>.log`` (or the console)."""
        folder = Path(self._tmp.name)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            cmd = node_command(spec, write_overrides(spec, folder))
            log_path = self.log_dir / f"{spec.full_name.strip('/').replace('/', '__')}.log"
            log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
            self._logs.append(log)
            logger.info("starting %s: %s", spec.full_name, " ".join(cmd))
            self.processes[spec.full_name] = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def log_of(self, full_name: str) -> str:
        """What a node has printed so far."""
        path = self.log_dir / f"{full_name.strip('/').replace('/', '__')}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def exited(self) -> dict[str, int]:
        """Nodes that have exited, with their exit codes."""
        return {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}

    def check_running(self) -> None:
        """Raise if any node has exited, quoting the end of its log."""
        dead = self.exited()
        if dead:
            name, code = next(iter(dead.items()))
            tail = "\n".join(self.log_of(name).splitlines()[-20:])
            raise RuntimeError(f"node {name} exited with code {code}:\n{tail}")

    def kill(self, full_name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one node (tests use it to simulate a crash)."""
        os.killpg(self.processes[full_name].pid, sig)

    def stop(self, timeout: float = 5.0) -> dict[str, int]:
        """Stop every node (SIGINT, then SIGKILL after ``timeout``); return their exit codes."""
        for proc in self.processes.values():
            if proc.poll() is None:
                _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()
        return {n: p.returncode for n, p in self.processes.items()}

    def wait(self, poll: float = 0.2) -> str:
        """Block until a node exits; return its name (the caller then stops the rest)."""
        while True:
            dead = self.exited()
            if dead:
                return next(iter(dead))
            time.sleep(poll)

    def __enter__(self) -> GraphProcesses:
        self._signals = _stop_signals_interrupt()
        self._signals.__enter__()
        try:
            return self.start()
        except BaseException:
            self.stop()
            self._signals.__exit__(None, None, None)
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
            self._tmp.cleanup()
        finally:
            self._signals.__exit__(None, None, None)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # systemd, docker stop, kill; a closed terminal


class GraphStopRequested(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: handled like Ctrl-C, so every node of the graph is stopped."""


@contextlib.contextmanager
def _stop_signals_interrupt():
    """While the graph runs, SIGTERM and SIGHUP raise :class:`GraphStopRequested` in the main thread
    (their default would end this process at once and orphan the nodes, each in its own session).
    Off the main thread signals cannot be handled; the caller's own handling stays as it was."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise GraphStopRequested(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def terminate(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """Stop one process: SIGTERM, then SIGKILL if it is still there after ``timeout`` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
