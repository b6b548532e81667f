"""The skill registry: primitive skills with PDDL parameters, pre- and post-conditions.

Loaded from ``config/skills.yaml`` and validated once, so a typo (an unknown predicate, a wrong
arity, a parameter that is never declared) fails at start-up with the file and skill named, instead
of as a planner error halfway through a task.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meta_robot.core import paths

FORMAT = "meta_robot.skills/1"
_ATOM = r"\(\s*([a-z_][a-z0-9_]*)((?:\s+[?a-z_][a-z0-9_]*)*)\s*\)"
_POSITIVE = re.compile(rf"^{_ATOM}$")
_NEGATIVE = re.compile(rf"^\(\s*not\s*{_ATOM}\s*\)$")
_PARAMETER = re.compile(r"^\?([a-z_][a-z0-9_]*)\s*-\s*([a-z_][a-z0-9_]*)$")


class RegistryError(ValueError):
    """The registry file, or a request against it, is malformed."""


@dataclass(frozen=True)
class Literal:
    """A possibly negated atom: ``(holding ?o)`` or ``(not (drawer_open))``."""

    predicate: str
    arguments: tuple[str, ...] = ()
    negated: bool = False

    @classmethod
    def parse(cls, text: str) -> Literal:
        for pattern, negated in ((_POSITIVE, False), (_NEGATIVE, True)):
            if match := pattern.match(text.strip()):
                return cls(match.group(1), tuple(match.group(2).split()), negated)
        raise RegistryError(f"'{text}' is not a PDDL literal like (pred ?x) or (not (pred ?x))")

    def substitute(self, binding: Mapping[str, str]) -> Literal:
        """The literal with ``?var`` arguments replaced by objects."""
        return Literal(self.predicate, tuple(binding.get(a, a) for a in self.arguments), self.negated)

    @property
    def atom(self) -> tuple[str, ...]:
        """The positive atom as a tuple: ``("holding", "red_cube")``."""
        return (self.predicate, *self.arguments)

    def __str__(self) -> str:
        atom = "(" + " ".join(self.atom) + ")"
        return f"(not {atom})" if self.negated else atom


@dataclass(frozen=True)
class PredicateSpec:
    name: str
    parameter_types: tuple[str, ...]
    doc: str = ""


@dataclass(frozen=True)
class SkillSpec:
    """One primitive skill as the registry declares it."""

    name: str
    parameters: tuple[tuple[str, str], ...]  # (variable without '?', type)
    preconditions: tuple[Literal, ...]
    effects: tuple[Literal, ...]
    timeout: float
    retries: int
    doc: str = ""

    def binding(self, arguments: Sequence[str]) -> dict[str, str]:
        return {f"?{var}": arg for (var, _), arg in zip(self.parameters, arguments, strict=True)}


@dataclass(frozen=True)
class GroundSkill:
    """A skill applied to objects: ``pick(red_cube)`` with its literals instantiated."""

    spec: SkillSpec
    arguments: tuple[str, ...]
    preconditions: tuple[Literal, ...]
    effects: tuple[Literal, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    def __str__(self) -> str:
        return f"{self.spec.name}({', '.join(self.arguments)})"


@dataclass(frozen=True)
class Registry:
    domain: str
    types: Mapping[str, tuple[str, ...]]  # type -> objects
    predicates: Mapping[str, PredicateSpec]
    skills: Mapping[str, SkillSpec]
    geometry: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def skill(self, name: str) -> SkillSpec:
        if name not in self.skills:
            raise RegistryError(f"unknown skill '{name}'; the registry has: {', '.join(self.skills)}")
        return self.skills[name]

    def type_of(self, obj: str) -> str:
        for type_name, objects in self.types.items():
            if obj in objects:
                return type_name
        known = ", ".join(o for objects in self.types.values() for o in objects)
        raise RegistryError(f"unknown object '{obj}'; known objects: {known}")

    def ground(self, skill: str, arguments: Sequence[str]) -> GroundSkill:
        """Instantiate ``skill`` with ``arguments``, checking their number and types."""
        spec = self.skill(skill)
        arguments = tuple(arguments)
        if len(arguments) != len(spec.parameters):
            expected = " ".join(f"?{v} - {t}" for v, t in spec.parameters) or "no arguments"
            raise RegistryError(f"skill '{skill}' takes ({expected}), got {list(arguments)}")
        for (var, type_name), arg in zip(spec.parameters, arguments, strict=True):
            if self.type_of(arg) != type_name:
                raise RegistryError(f"skill '{skill}': ?{var} must be a {type_name}, '{arg}' is not")
        binding = spec.binding(arguments)
        return GroundSkill(
            spec,
            arguments,
            tuple(lit.substitute(binding) for lit in spec.preconditions),
            tuple(lit.substitute(binding) for lit in spec.effects),
        )

    def groundings(self, skill: str) -> list[GroundSkill]:
        """Every instantiation of ``skill`` over the registry's objects."""
        spec = self.skill(skill)
        combos: list[tuple[str, ...]] = [()]
        for _, type_name in spec.parameters:
            combos = [c + (o,) for c in combos for o in self.types[type_name]]
        return [self.ground(skill, c) for c in combos]


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and validate the registry (``config/skills.yaml`` by default)."""
    path = Path(path) if path is not None else paths.config_path("skills.yaml")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"cannot read the skill registry {path}: {exc}") from exc
    try:
        return _parse(raw, str(path))
    except (KeyError, TypeError) as exc:
        raise RegistryError(f"{path}: malformed registry ({exc!r})") from exc


def _parse(raw: dict[str, Any], source: str) -> Registry:
    if raw.get("format") != FORMAT:
        raise RegistryError(f"{source}: format must be '{FORMAT}', got {raw.get('format')!r}")
    types = {name: tuple(objects) for name, objects in raw["types"].items()}
    predicates = {}
    for name, spec in raw["predicates"].items():
        unknown = [t for t in spec.get("parameters", []) if t not in types]
        if unknown:
            raise RegistryError(f"{source}: predicate '{name}' uses unknown types {unknown}")
        predicates[name] = PredicateSpec(name, tuple(spec.get("parameters", [])), spec.get("doc", ""))
    skills = {}
    for name, spec in raw["skills"].items():
        parameters = []
        for text in spec.get("parameters", []):
            match = _PARAMETER.match(text.strip())
            if match is None or match.group(2) not in types:
                raise RegistryError(f"{source}: skill '{name}': bad parameter '{text}' (want '?x - type')")
            parameters.append((match.group(1), match.group(2)))
        declared = {f"?{v}": t for v, t in parameters}
        literals = {}
        for key in ("preconditions", "effects"):
            literals[key] = tuple(Literal.parse(text) for text in spec.get(key, []))
            for lit in literals[key]:
                _check_literal(lit, predicates, declared, f"{source}: skill '{name}' {key}")
        skills[name] = SkillSpec(
            name,
            tuple(parameters),
            literals["preconditions"],
            literals["effects"],
            float(spec["timeout"]),
            int(spec.get("retries", 0)),
            spec.get("doc", ""),
        )
    return Registry(raw.get("domain", "workcell"), types, predicates, skills, raw.get("geometry", {}), source)


def _check_literal(
    lit: Literal, predicates: Mapping[str, PredicateSpec], declared: Mapping[str, str], where: str
) -> None:
    if lit.predicate not in predicates:
        raise RegistryError(f"{where}: unknown predicate '{lit.predicate}' in {lit}")
    wanted = predicates[lit.predicate].parameter_types
    if len(wanted) != len(lit.arguments):
        raise RegistryError(
            f"{where}: {lit} has {len(lit.arguments)} arguments, '{lit.predicate}' takes {len(wanted)}"
        )
    for arg, type_name in zip(lit.arguments, wanted, strict=True):
        if arg not in declared:
            raise RegistryError(f"{where}: {lit} uses undeclared parameter {arg}")
        if declared[arg] != type_name:
            raise RegistryError(
                f"{where}: {lit}: {arg} is a {declared[arg]}, '{lit.predicate}' wants {type_name}"
            )
