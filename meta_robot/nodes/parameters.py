"""Declare a config dataclass as ROS parameters, once, with its defaults and documentation.

A config dataclass (e.g. SafetyLimits) is the single source of a node's parameters: each field
becomes ``<prefix>.<field>`` with the field's default and its ``metadata["doc"]`` as description, and
the dataclass's own validation decides whether the values are acceptable.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

T = TypeVar("T")


def _ros_value(value: Any) -> Any:
    """ROS parameters hold lists, not tuples, and floats must stay floats."""
    if isinstance(value, tuple):
        return [float(v) if isinstance(v, (int, float)) else v for v in value]
    return value


def declare_config(node: Node, prefix: str, cls: type[T]) -> T:
    """Declare every field of dataclass ``cls`` under ``prefix`` and build it from the values."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        descriptor = ParameterDescriptor(description=f.metadata.get("doc", ""))
        name = f"{prefix}.{f.name}" if prefix else f.name
        param = node.declare_parameter(name, _ros_value(default), descriptor)
        values[f.name] = param.value
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid '{prefix}' parameters for node {node.get_name()}: {exc}") from exc
