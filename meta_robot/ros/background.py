"""An rclpy node spun in a background thread, for programs whose main thread blocks (demo, CLI,
tests, benchmarks)."""

from __future__ import annotations

import threading

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions


class BackgroundNode:
    """Initialises rclpy, creates ``name`` and spins it until :meth:`close`."""

    def __init__(self, name: str, **node_kwargs) -> None:
        # No rclpy signal handlers: Ctrl-C is a KeyboardInterrupt in the main thread and the node stays
        # up, so the program can still tidy up over ROS (discard a half-recorded episode) on its way out.
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, **node_kwargs)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, name=f"spin-{name}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop spinning, wait for the spin thread, then destroy the node and shut rclpy down
        (destroying a node that another thread still spins can abort the process)."""
        self.executor.shutdown()
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown()

    def __enter__(self) -> BackgroundNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
