"""Free-space guard: never start an episode, or keep one going, on a nearly full disk.

A recorder that fills the disk corrupts its own episode and starves everything else on the robot
computer (logs, the OS); closing the episode cleanly while there is still room is always better.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3


class DiskSpaceError(RuntimeError):
    """Free space on the output filesystem is below the configured minimum."""


@dataclass(frozen=True)
class DiskUsage:
    """Bytes free (for an unprivileged writer) and total on one filesystem."""

    free: int
    total: int


def disk_usage(path: Path) -> DiskUsage:
    """Usage of the filesystem that holds ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return DiskUsage(free=usage.free, total=usage.total)


class DiskGuard:
    """Checks that at least ``min_free_bytes`` and ``min_free_fraction`` of the disk are free.

    ``parameter`` names the setting a user changes to lower the minimum; it goes into the error.
    ``usage`` is injectable so the rule can be tested without filling a disk.
    """

    def __init__(
        self,
        min_free_bytes: int,
        min_free_fraction: float = 0.0,
        parameter: str = "min_free_space_gb",
        usage: Callable[[Path], DiskUsage] = disk_usage,
    ) -> None:
        if min_free_bytes < 0 or not 0.0 <= min_free_fraction < 1.0:
            raise ValueError("min_free_bytes must be >= 0 and min_free_fraction in [0, 1)")
        self.min_free_bytes = int(min_free_bytes)
        self.min_free_fraction = float(min_free_fraction)
        self.parameter = parameter
        self.usage = usage

    def required(self, usage: DiskUsage) -> int:
        """Bytes that must stay free on a filesystem of this size."""
        return max(self.min_free_bytes, int(self.min_free_fraction * usage.total))

    def shortfall(self, path: Path) -> str | None:
        """None when there is room, else a one-line explanation."""
        usage = self.usage(Path(path))
        need = self.required(usage)
        if usage.free >= need:
            return None
        return (
            f"only {usage.free / GIB:.2f} GiB free on the filesystem of {Path(path).absolute()} "
            f"({100 * usage.free / max(usage.total, 1):.1f}% of {usage.total / GIB:.1f} GiB); the recorder "
            f"needs {need / GIB:.2f} GiB free (parameter {self.parameter}={self.min_free_bytes / GIB:g}, "
            f"min_free_fraction={self.min_free_fraction:g}): free some space or lower the minimum"
        )

    def check(self, path: Path) -> None:
        """Raise :class:`DiskSpaceError` if there is not enough free space."""
        problem = self.shortfall(path)
        if problem is not None:
            raise DiskSpaceError(problem)
