"""Network hygiene for every process meta_robot starts: DDS stays on loopback, on a private domain.

By default DDS discovery multicasts on every interface and shares domain 0 with anyone on the LAN.
Every process that a test, CI, the demo or ``meta-robot up`` starts gets the environment built here
(Kilted ignores ROS_LOCALHOST_ONLY; ROS_AUTOMATIC_DISCOVERY_RANGE is what it reads). On a robot whose
ROS network is configured on purpose, pass ``--network system`` to ``meta-robot up`` to keep it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from meta_robot.core import paths

# Fast DDS (and so every ROS_DOMAIN_ID) only has UDP ports for ids 0..101 on Linux; stay below.
PRIVATE_DOMAIN_RANGE = range(42, 100)


def private_domain_id(seed: int | None = None) -> int:
    """A domain id unlikely to collide with a neighbour's, derived from the process id by default."""
    seed = os.getpid() if seed is None else seed
    return PRIVATE_DOMAIN_RANGE[seed % len(PRIVATE_DOMAIN_RANGE)]


def loopback_environment(
    domain_id: int | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """An environment for a ROS process that discovers peers on this machine only.

    The domain id is, in order: ``domain_id``, an explicit ROS_DOMAIN_ID in ``base``, or a private
    one. The Fast DDS shared-memory profile shipped in config/ is used unless one is already set.
    """
    env = dict(os.environ if base is None else base)
    if domain_id is None:
        domain_id = int(env["ROS_DOMAIN_ID"]) if env.get("ROS_DOMAIN_ID") else private_domain_id()
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    profile = paths.share_dir() / "config" / "fastdds.xml"
    if profile.is_file():
        env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def apply_loopback_environment(domain_id: int | None = None) -> dict[str, str]:
    """Apply :func:`loopback_environment` to this process; call it before ``rclpy.init()``."""
    env = loopback_environment(domain_id)
    os.environ.update(env)
    return env
