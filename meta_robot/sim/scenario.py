"""Scenario definitions (sim/scenarios/*.yaml): what a reset randomises, and how, from a seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from meta_robot.core import paths

MAX_PLACEMENT_TRIES = 1000


@dataclass(frozen=True)
class ObjectRange:
    """Uniform ranges of an object's resting pose on the desk."""

    x: tuple[float, float]
    y: tuple[float, float]
    yaw: tuple[float, float]


@dataclass(frozen=True)
class Scenario:
    """A named family of start states."""

    name: str
    description: str
    arm_home: tuple[float, ...]
    gripper_open: bool
    drawer_opening: tuple[float, float]
    min_separation: float
    objects: dict[str, ObjectRange]

    def sample(self, seed: int) -> SampledState:
        """A start state, the same for the same seed."""
        rng = np.random.default_rng(seed)
        placed: dict[str, tuple[float, float, float]] = {}
        for name, r in self.objects.items():
            for _ in range(MAX_PLACEMENT_TRIES):
                x, y = rng.uniform(*r.x), rng.uniform(*r.y)
                if all(np.hypot(x - px, y - py) >= self.min_separation for px, py, _ in placed.values()):
                    break
            else:
                raise ValueError(f"scenario '{self.name}': cannot place {name} {self.min_separation} m apart")
            placed[name] = (float(x), float(y), float(rng.uniform(*r.yaw)))
        return SampledState(placed, float(rng.uniform(*self.drawer_opening)))


@dataclass(frozen=True)
class SampledState:
    """One draw of a scenario: object (x, y, yaw) on the desk and the drawer opening (m)."""

    objects: dict[str, tuple[float, float, float]]
    drawer_opening: float


def available_scenarios() -> list[str]:
    """Names of the scenarios under sim/scenarios/."""
    return sorted(p.stem for p in (paths.share_dir() / "sim" / "scenarios").glob("*.yaml"))


def load_scenario(name: str) -> Scenario:
    """Load sim/scenarios/<name>.yaml; unknown names list the available ones."""
    path = paths.share_dir() / "sim" / "scenarios" / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown scenario '{name}'; available: {available_scenarios()}")
    return _parse(name, path)


def _parse(name: str, path: Path) -> Scenario:
    raw = yaml.safe_load(path.read_text())
    try:
        objects = {
            obj: ObjectRange(tuple(r["x"]), tuple(r["y"]), tuple(r.get("yaw", (0.0, 0.0))))
            for obj, r in raw["objects"].items()
        }
        scenario = Scenario(
            name=name,
            description=str(raw.get("description", "")),
            arm_home=tuple(float(v) for v in raw["arm_home"]),
            gripper_open=bool(raw.get("gripper_open", True)),
            drawer_opening=tuple(float(v) for v in raw.get("drawer_opening", (0.0, 0.0))),
            min_separation=float(raw.get("min_separation", 0.08)),
            objects=objects,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed scenario file {path}: {exc!r}") from exc
    if len(scenario.arm_home) != 7:
        raise ValueError(f"scenario {path}: arm_home needs 7 joint angles")
    return scenario
