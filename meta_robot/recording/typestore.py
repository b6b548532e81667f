"""The rosbags type store that knows ROS 2's standard messages and meta_robot_interfaces.

Recordings hold raw CDR plus each type's definition; reading them back (rosbags, dataset export,
replay) needs the same definitions. Ours come from the interface package's own ``.msg`` files, so a
new field is picked up without editing anything here.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

INTERFACES = "meta_robot_interfaces"


def interface_msg_dirs() -> list[Path]:
    """Where meta_robot_interfaces' ``msg`` folder may be: the source checkout, this Python's prefix
    (the wheels' build installs there), then every ament prefix (a colcon build on a robot)."""
    source = Path(__file__).resolve().parents[2] / INTERFACES / "msg"
    prefixes = [Path(sys.prefix)] + [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(":") if p]
    return [source] + [prefix / "share" / INTERFACES / "msg" for prefix in prefixes]


@functools.cache
def typestore() -> Typestore:
    """ROS 2 Kilted's standard types plus every message of meta_robot_interfaces."""
    store = get_typestore(Stores.ROS2_KILTED)
    folder = next((d for d in interface_msg_dirs() if d.is_dir()), None)
    if folder is None:
        searched = ", ".join(str(d) for d in interface_msg_dirs())
        raise FileNotFoundError(f"cannot find the {INTERFACES} .msg files (searched {searched})")
    types = {}
    for path in sorted(folder.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{INTERFACES}/msg/{path.stem}"))
    store.register(types)
    return store
