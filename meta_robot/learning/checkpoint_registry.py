"""The registry of shipped checkpoints: ``checkpoints/manifest.yaml`` names each model, its file, its
SHA-256, and the command, data and scores that produced it.

Nodes ask for a checkpoint by name (``goal_conditioned_bc``) or by path. A named one is checked
against the manifest's digest before anything reads it, so a truncated or swapped file fails at
start-up with a message naming it, not as odd behaviour on the arm.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meta_robot.core import paths
from meta_robot.learning.checkpoints import CheckpointError

MANIFEST_FILE = "manifest.yaml"
FORMAT = "meta_robot.checkpoints/1"


@dataclass(frozen=True)
class CheckpointEntry:
    """One manifest entry."""

    name: str
    kind: str  # policy | classifier
    path: Path
    sha256: str
    command: str = ""
    data: str = ""
    scores: dict[str, Any] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(directory: Path | None = None) -> dict[str, CheckpointEntry]:
    """The entries of ``directory/manifest.yaml`` (default: the shipped checkpoints)."""
    directory = Path(directory) if directory is not None else paths.checkpoints_dir()
    manifest = directory / MANIFEST_FILE
    if not manifest.is_file():
        raise CheckpointError(f"no checkpoint manifest at {manifest}")
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{manifest}: not valid YAML ({exc})") from exc
    if data.get("format") != FORMAT:
        raise CheckpointError(f"{manifest}: format {data.get('format')!r}, expected {FORMAT!r}")
    entries = {}
    for name, entry in (data.get("checkpoints") or {}).items():
        try:
            entries[name] = CheckpointEntry(
                name=name,
                kind=str(entry["kind"]),
                path=directory / entry["file"],
                sha256=str(entry["sha256"]),
                command=str(entry.get("command", "")),
                data=str(entry.get("data", "")),
                scores=dict(entry.get("scores") or {}),
            )
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{manifest}: entry {name!r} lacks {exc}") from exc
    return entries


def resolve_checkpoint(name_or_path: str, kind: str, directory: Path | None = None) -> Path:
    """The file for a manifest name (digest verified) or an existing path (taken as it is)."""
    if not name_or_path:
        raise CheckpointError(f"no {kind} checkpoint given (a name from the manifest or a path)")
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".safetensors" or candidate.is_dir() or "/" in name_or_path:
        return candidate  # a path: the loader reports a missing or corrupt file by name
    entries = load_manifest(directory)
    entry = entries.get(name_or_path)
    if entry is None:
        known = sorted(n for n, e in entries.items() if e.kind == kind)
        raise CheckpointError(f"no {kind} checkpoint named {name_or_path!r} in the manifest (known: {known})")
    if entry.kind != kind:
        raise CheckpointError(f"checkpoint {name_or_path!r} is a {entry.kind}, not a {kind}")
    if not entry.path.is_file():
        raise CheckpointError(f"checkpoint {name_or_path!r}: {entry.path} is missing")
    actual = sha256_of(entry.path)
    if actual != entry.sha256:
        raise CheckpointError(
            f"checkpoint {name_or_path!r}: {entry.path} does not match the manifest's SHA-256 "
            f"(file {actual[:12]}…, manifest {entry.sha256[:12]}…): corrupt or replaced"
        )
    return entry.path


RUN_FILES = {  # kind -> (weights, training record) a training run writes
    "policy": ("policy.safetensors", "policy.yaml"),
    "classifier": ("classifier.safetensors", "classifier.yaml"),
}


def ship_checkpoint(
    name: str,
    kind: str,
    run_dir: Path,
    scores: dict[str, Any] | None = None,
    directory: Path | None = None,
    data: Any = None,
    command: str | None = None,
) -> CheckpointEntry:
    """Copy a training run's weights, record and curves into ``<directory>/<name>/`` and enter them
    in the manifest with their digest, the command and data that produced them, and ``scores``
    (merged over the scores already recorded for ``name``). ``data`` and ``command`` replace what
    the run record says (a pipeline enters its data summary and its own command line)."""
    import shutil

    if kind not in RUN_FILES:
        raise ValueError(f"kind must be one of {sorted(RUN_FILES)}, got {kind!r}")
    directory = Path(directory) if directory is not None else paths.checkpoints_dir()
    weights_name, record_name = RUN_FILES[kind]
    run_dir = Path(run_dir)
    weights, record_path = run_dir / weights_name, run_dir / record_name
    for path in (weights, record_path):
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: is {run_dir} a finished {kind} training run?")
    record = yaml.safe_load(record_path.read_text(encoding="utf-8")) or {}
    target = directory / name
    target.mkdir(parents=True, exist_ok=True)
    for source in (weights, record_path, run_dir / "curves.png"):
        if source.is_file():
            shutil.copyfile(source, target / source.name)
    manifest_path = directory / MANIFEST_FILE
    manifest = (
        yaml.safe_load(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else None
    ) or {"format": FORMAT, "checkpoints": {}}
    entries = manifest.setdefault("checkpoints", {})
    episodes = record.get("data", {}).get("episodes", {})
    count = sum(len(v) for v in episodes.values()) if isinstance(episodes, dict) else 0
    entries[name] = {
        "kind": kind,
        "file": f"{name}/{weights_name}",
        "sha256": sha256_of(target / weights_name),
        "command": command or record.get("command", ""),
        "data": data
        if data is not None
        else f"{record.get('data', {}).get('root', '')} ({count} episodes; split in {name}/{record_name})",
        "scores": {**(entries.get(name, {}).get("scores") or {}), **(scores or {})},
    }
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(
        "# Shipped checkpoints: which command and data produced each, and what it scores.\n"
        "# Written by `meta-robot checkpoint ship`; nodes verify each file's sha256 before loading it.\n"
        + yaml.safe_dump(manifest, sort_keys=False),
        encoding="utf-8",
    )
    tmp.replace(manifest_path)
    return load_manifest(directory)[name]
