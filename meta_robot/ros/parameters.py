"""Declare a config dataclass as ROS parameters, once, with its defaults and documentation: the one
way a node here declares parameters (``ros2 param describe`` shows every one's description).

A config dataclass (e.g. SafetyLimits) is the single source of a node's parameters: each field
becomes ``<prefix>.<field>`` with the field's default, its ``metadata["doc"]`` as description and an
optional ``metadata["range"]`` (low, high) that ROS tools show and enforce; the dataclass's own
validation decides whether the values are acceptable.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from meta_robot.core.params import param as param

T = TypeVar("T")


def _ros_value(value: Any) -> Any:
    """ROS parameters hold lists, not tuples, and floats must stay floats."""
    if isinstance(value, tuple):
        return [float(v) if isinstance(v, (int, float)) else v for v in value]
    return value


def describe(doc: str, value_range: tuple[float, float] | None, default: Any) -> ParameterDescriptor:
    """A descriptor with the documentation and, if given, the range (integer or floating point)."""
    descriptor = ParameterDescriptor(description=doc)
    if value_range is not None:
        low, high = value_range
        descriptor.description += f" [{low}, {high}]"
        if isinstance(default, int) and not isinstance(default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
            ]
    return descriptor


def declare_config(node: Node, prefix: str, cls: type[T]) -> T:
    """Declare every field of dataclass ``cls`` under ``prefix`` and build it from the values."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        descriptor = describe(f.metadata.get("doc", ""), f.metadata.get("range"), default)
        name = f"{prefix}.{f.name}" if prefix else f.name
        param = node.declare_parameter(name, _ros_value(default), descriptor)
        values[f.name] = param.value
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid '{prefix}' parameters for node {node.get_name()}: {exc}") from exc
