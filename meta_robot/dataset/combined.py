"""Several datasets as one training set: robot recordings next to data engine episodes.

A lab's usual mix is thousands of generated episodes plus a few dozen teleoperated on the real arm.
Both kinds already share the trainers' interface (``episodes``, ``skills``, ``argument_vocabulary``,
``max_arguments``, ``image_size``, ``fps``, ``arrays()``, ``episode_steps()``);
:class:`CombinedDataset` stacks any number of them behind it. Arrays only some parts have (the
engine's true scene state, ``privileged``) are NaN where a part lacks them, and the losses that use
them skip those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meta_robot.dataset.step_arrays import StepArrays
from meta_robot.dataset.torch_dataset import PAD_ARGUMENT

REQUIRED = ("proprio", "action", "intervention")


class CombinedDataset(StepArrays):
    """The steps of every part, in order; parts must agree on image size and control rate."""

    def __init__(self, parts: Sequence[Any]) -> None:
        if not parts:
            raise ValueError("no datasets to combine")
        sizes = {tuple(p.image_size) for p in parts}
        rates = {float(p.fps) for p in parts}
        if len(sizes) > 1 or len(rates) > 1:
            raise ValueError(f"datasets to combine differ in image size {sizes} or rate {rates}")
        self.parts = list(parts)
        self.roots = [Path(p.root) for p in parts]
        self.root = self.roots[0]
        self.image_size = sizes.pop()
        self.fps = rates.pop()
        self.episodes = [e for p in parts for e in p.episodes]
        ids = [e.episode_id for e in self.episodes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"episode ids in more than one dataset: {duplicates[:5]}")
        self.skills = sorted({s for p in parts for s in p.skills})
        self.argument_vocabulary = [
            PAD_ARGUMENT,
            *sorted({a for p in parts for a in p.argument_vocabulary[1:]}),
        ]
        self.max_arguments = max(p.max_arguments for p in parts)
        lengths = [len(p) for p in parts]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.episode_starts = np.concatenate(
            [[0], *[p.episode_starts[1:] + offsets[k] for k, p in enumerate(parts)]]
        ).astype(np.int64)
        self._arrays = self._combine([p.arrays() for p in parts], lengths)

    @staticmethod
    def _combine(arrays: list[dict[str, np.ndarray]], lengths: list[int]) -> dict[str, np.ndarray]:
        keys = sorted({k for a in arrays for k in a})
        out = {}
        for key in keys:
            present = [a[key] for a in arrays if key in a]
            if len(present) < len(arrays) and key in REQUIRED:
                raise ValueError(f"a dataset to combine has no {key!r} array")
            like = present[0]
            if len(present) < len(arrays) and like.dtype.kind != "f" and like.dtype != bool:
                raise ValueError(f"only some datasets have {key!r}, which cannot be marked unknown")
            fill = False if like.dtype == bool else np.nan
            out[key] = np.concatenate(
                [
                    a[key] if key in a else np.full((n, *like.shape[1:]), fill, like.dtype)
                    for a, n in zip(arrays, lengths, strict=True)
                ]
            )
        return out

    def summary(self) -> dict[str, Any]:
        """Each part's own summary where it has one (engine data), else its episode count."""
        return {
            f"part{k}": p.summary() if hasattr(p, "summary") else {"episodes": len(p.episodes)}
            for k, p in enumerate(self.parts)
        }
