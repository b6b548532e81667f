"""One entry-point shape for every node: init, build, spin, and always clean up.

Works on Humble, Jazzy and Kilted alike (no ``with rclpy.init()``). Configuration errors (bad
parameters, missing assets, a second driver) end the process with a one-line error and exit code 2
instead of a traceback; whatever happens, the node's ``shutdown`` runs so an arm is left stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

N = TypeVar("N", bound=Node)
CONFIG_ERRORS = (ValueError, KeyError, FileNotFoundError, RuntimeError)


def run_node(
    factory: Callable[[], N],
    spin: Callable[[N], None] | None = None,
    shutdown: Callable[[N], None] | None = None,
    args: list[str] | None = None,
) -> int:
    """Build the node with ``factory``, spin it (``rclpy.spin`` by default), then clean up."""
    rclpy.init(args=args)
    node: N | None = None
    code = 0
    try:
        node = factory()
        (spin or rclpy.spin)(node)
    except (KeyboardInterrupt, ExternalShutdownException):  # SIGINT / SIGTERM
        pass
    except CONFIG_ERRORS as exc:
        if node is None:
            print(f"error: {exc}", file=sys.stderr)
            code = 2
        else:
            raise
    finally:
        if node is not None:
            if shutdown is not None:
                shutdown(node)
            node.destroy_node()
        rclpy.try_shutdown()
    return code
