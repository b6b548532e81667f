"""Network hygiene: every environment we hand to a ROS process keeps DDS on loopback."""

from __future__ import annotations

from meta_robot.ros.environment import PRIVATE_DOMAIN_RANGE, loopback_environment, private_domain_id


def test_loopback_environment_forces_localhost_discovery():
    env = loopback_environment(
        base={"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET", "ROS_STATIC_PEERS": "10.0.0.2"}
    )
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert "ROS_STATIC_PEERS" not in env
    assert int(env["ROS_DOMAIN_ID"]) in PRIVATE_DOMAIN_RANGE
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("config/fastdds.xml")


def test_explicit_domain_id_wins():
    assert loopback_environment(17, base={"ROS_DOMAIN_ID": "5"})["ROS_DOMAIN_ID"] == "17"
    assert loopback_environment(base={"ROS_DOMAIN_ID": "5"})["ROS_DOMAIN_ID"] == "5"


def test_private_domain_ids_stay_in_the_valid_range():
    assert {private_domain_id(seed) for seed in range(500)} <= set(PRIVATE_DOMAIN_RANGE)
