"""Checkpoint files: safetensors written atomically and read back with errors that name the file.

Every learned component (classifiers, policies, training state) stores tensors plus JSON metadata in
safetensors; nothing is ever unpickled, and a crash mid-write never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, corrupt or does not fit the model; the message says which."""


def atomic_save(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> None:
    """safetensors file written to a temp name and renamed: a crash never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=dict(metadata)
        )
        os.chmod(tmp, 0o644)  # mkstemp's 0600 (kept by save_file) would hide it from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, with a :class:`CheckpointError` naming the file
    when it is missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path}: corrupt or not a safetensors file ({exc})") from exc
    return tensors, metadata
