"""Where the package's data lives: config/, sim/, launch/ and checkpoints/.

In a source checkout (editable install, tests, CI) they sit beside the Python package; after a colcon
or pip install they are in the package's ament share directory.
"""

from __future__ import annotations

import functools
from pathlib import Path

PACKAGE_NAME = "meta_robot"


@functools.cache
def share_dir() -> Path:
    """The directory holding config/, sim/ and launch/."""
    source_root = Path(__file__).resolve().parents[2]
    if (source_root / "package.xml").is_file() and (source_root / "config").is_dir():
        return source_root
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE_NAME))
    except (ImportError, LookupError) as exc:  # PackageNotFoundError is a LookupError
        raise FileNotFoundError(
            f"cannot find the {PACKAGE_NAME} share directory (config/, sim/, launch/): not in a "
            f"source checkout ({source_root}) and not installed in the ament index"
        ) from exc


def config_path(name: str) -> Path:
    """Path of a file under config/, failing loudly if it is missing."""
    return _existing(share_dir() / "config" / name)


def sim_path(name: str) -> Path:
    """Path of a file under sim/, failing loudly if it is missing."""
    return _existing(share_dir() / "sim" / name)


def checkpoints_dir() -> Path:
    """The shipped checkpoints (checkpoints/ with its manifest.yaml)."""
    return share_dir() / "checkpoints"


def _existing(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"missing package data file: {path}")
    return path
