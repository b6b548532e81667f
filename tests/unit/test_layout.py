"""The package's layering, checked by ``tools/check_imports.py`` (which CI runs through this test)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_checker():
    spec = importlib.util.spec_from_file_location("check_imports", ROOT / "tools" / "check_imports.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_imports"] = module
    spec.loader.exec_module(module)
    return module


def test_the_package_has_no_import_cycles_and_no_upward_imports():
    problems, parts = load_checker().check()
    assert problems == []
    assert parts["core"] <= {"core"}  # the floor imports nothing above it


def test_the_checker_finds_cycles_upward_imports_ros_in_a_core_and_misplaced_modules(tmp_path):
    def write(name: str, text: str = "") -> None:
        path = tmp_path / "meta_robot" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    for package in ("", "core/", "apps/", "skills/"):
        write(f"{package}__init__.py")
    write("core/maths.py", "from meta_robot.apps.run import go\n")  # up from the floor
    write("apps/run.py", "def go():\n    pass\n")
    write("skills/a.py", "from meta_robot.skills import b\n")
    write("skills/b.py", "from meta_robot.skills.a import thing\n")  # a <-> b at load time
    write("skills/c.py", "def later():\n    from meta_robot.skills import a\n")  # deferred: no cycle
    write("skills/d.py", "from sensor_msgs.msg import Image\n")  # ROS in a core
    write("ros/__init__.py")
    write("ros/messages.py", "import rclpy\n")  # where ROS belongs
    write("helpers.py")
    write("nodes/__init__.py")
    write("nodes/camera_node.py")
    write("nodes/messages.py")  # a library among the executables
    problems, _ = load_checker().check(tmp_path)
    assert any("meta_robot.core.maths imports meta_robot.apps.run" in p for p in problems), problems
    assert any("cycle" in p and "meta_robot.skills.a" in p and "meta_robot.skills.b" in p for p in problems)
    assert not any("meta_robot.skills.c" in p for p in problems)
    assert any(p.startswith("meta_robot.helpers: only") for p in problems)
    assert any(p.startswith("meta_robot.nodes.messages: nodes/ holds only") for p in problems)
    assert any(p == "meta_robot.skills.d imports sensor_msgs: ROS below ros/" for p in problems), problems
    assert not any("meta_robot.ros.messages" in p for p in problems)
    assert len(problems) == 5


def test_every_node_of_the_graph_has_its_console_script_and_nothing_else_does():
    """setup.py installs one console script per node; the graph starts them by the same names."""
    import ast

    from meta_robot.ros.graph import NODES

    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "NODES" for t in n.targets)
    )
    assert scripts == {name: f"meta_robot.nodes.{module}:main" for name, (module, _) in NODES.items()}
    for module, params_files in NODES.values():
        assert (ROOT / "meta_robot" / "nodes" / f"{module}.py").is_file()
        assert all((ROOT / "config" / f).is_file() for f in params_files)


def test_bridge_parameters_override_the_graphs_own():
    """A caller's bridge parameters win, use_sim_time included (the parity test stamps in sim time)."""
    from meta_robot.ros.graph import sim_graph

    bridge = sim_graph(real_time_factor=1.0, bridge_parameters={"use_sim_time": True, "seed": 9})[0]
    assert bridge.parameters["use_sim_time"] is True and bridge.parameters["seed"] == 9
