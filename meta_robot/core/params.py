"""Config dataclass fields that carry their documentation: one source for a node's parameters (the
ROS layer declares them with it) and for the code that uses the same settings without ROS."""

from __future__ import annotations

import dataclasses
from typing import Any


def param(default: Any, doc: str, value_range: tuple[float, float] | None = None) -> Any:
    """A dataclass field with ``doc`` (and ``value_range``, low to high) in its metadata."""
    metadata = {"doc": doc, **({"range": value_range} if value_range is not None else {})}
    return dataclasses.field(default=default, metadata=metadata)
