"""ament_python package: `colcon build` on a robot with ROS 2, `pip install -e .` with the wheels."""

from __future__ import annotations

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "meta_robot"


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that install ``folder`` recursively under share/meta_robot."""
    entries = []
    for root, _dirs, files in os.walk(folder):
        if files:
            entries.append((os.path.join("share", PACKAGE, root), [os.path.join(root, f) for f in files]))
    return entries


NODES = {
    "sim_bridge": "meta_robot.nodes.sim_bridge_node:main",
    "franky_driver": "meta_robot.nodes.franky_driver_node:main",
    "realsense_camera": "meta_robot.nodes.realsense_camera_node:main",
    "teleop": "meta_robot.nodes.teleop_node:main",
    "scripted_operator": "meta_robot.nodes.scripted_operator_node:main",
    "recorder": "meta_robot.nodes.recorder_node:main",
    "live_view": "meta_robot.nodes.live_view_node:main",
    "success_classifier": "meta_robot.nodes.success_classifier_node:main",
    "policy_server": "meta_robot.nodes.policy_server_node:main",
    "executive": "meta_robot.nodes.executive_node:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        *tree("config"),
        *tree("sim"),
        *tree("checkpoints"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "meta-robot = meta_robot.cli:main",
            *(f"{name} = {target}" for name, target in NODES.items()),
        ]
    },
)
