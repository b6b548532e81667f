"""The in-memory form the trainers read: every step's arrays, episodes as contiguous index ranges."""

from __future__ import annotations

import numpy as np


class StepArrays:
    """Base of the datasets built as whole arrays (engine episodes, several datasets combined):
    subclasses set ``_arrays`` (name -> (N, ...) array, ``action`` among them) and
    ``episode_starts`` ((episodes + 1,) step offsets)."""

    _arrays: dict[str, np.ndarray]
    episode_starts: np.ndarray

    def __len__(self) -> int:
        return len(self._arrays["action"])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every step's arrays at once (do not modify them)."""
        return self._arrays

    def episode_steps(self, episode: int) -> range:
        """Dataset indices of one episode's steps, in order."""
        return range(int(self.episode_starts[episode]), int(self.episode_starts[episode + 1]))
