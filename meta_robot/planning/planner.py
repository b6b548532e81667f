"""Task planning: a goal and the current symbolic state in, a checked sequence of ground skills out.

Two backends read the same generated PDDL (``meta_robot.planning.pddl``):

* ``fast-downward``: Fast Downward through unified-planning (``up-fast-downward`` ships the binary),
  run as A* with LM-cut, so plans are optimal (fewest skills: every skill costs the robot tens of
  seconds, so a shorter plan matters more than search time here). It handles negated goal literals.
  unified-planning is imported on the first plan, not at import: it costs 1.5-2.5 s per process.
* ``pyperplan``: pure Python, no native parts, also A* with LM-cut. It cannot express negated goals
  or preconditions. It runs in a child process so the time limit can really stop it (a Python
  search cannot be interrupted in-process); the child is killed at the limit.

``auto`` picks Fast Downward when ``up_fast_downward`` is installed, else pyperplan. Whatever the
backend returns is replayed by STRIPS progression from the state before it is handed out: a plan
that does not apply or does not reach the goal is an error, never something the robot executes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from meta_robot.planning.pddl import Goal, domain_pddl, parse_goal, problem_pddl
from meta_robot.planning.symbolic import (
    Atom,
    PlanningError,
    atom_text,
    check_atom,
    check_state,
    holds,
    parse_atom,
    progress,
    unmet,
)
from meta_robot.skills.registry import GroundSkill, Registry, RegistryError

BACKENDS = ("auto", "fast-downward", "pyperplan")
_PIP = {
    "fast-downward": "pip install unified-planning up-fast-downward",
    "pyperplan": "pip install pyperplan",
}
_MODULES = {"fast-downward": ("unified_planning", "up_fast_downward"), "pyperplan": ("pyperplan",)}

# Runs in the child process: plan with pyperplan, print {"plan": [...] | null} as JSON on stdout.
_PYPERPLAN_WORKER = """\
import json, logging, sys
logging.disable(logging.WARNING)
from pyperplan.planner import HEURISTICS, SEARCHES, search_plan
plan = search_plan(sys.argv[1], sys.argv[2], SEARCHES["astar"], HEURISTICS["lmcut"])
print(json.dumps({"plan": None if plan is None else [op.name for op in plan]}))
"""


class Unsatisfiable(PlanningError):
    """No sequence of the registry's skills reaches the goal from the state."""


class PlannerTimeout(PlanningError):
    """The search did not finish within the planner's time limit (and was stopped)."""


class PlannerUnavailable(PlanningError):
    """The requested backend is not installed."""


@dataclass(frozen=True)
class PlanResult:
    """A checked plan: ``steps`` applied in order from the state reach the goal.

    ``generate_seconds`` is writing (and, for Fast Downward, reading back) the PDDL;
    ``search_seconds`` is the backend call, process start-up included.
    """

    steps: tuple[GroundSkill, ...]
    backend: str
    generate_seconds: float
    search_seconds: float

    def __str__(self) -> str:
        return " -> ".join(str(step) for step in self.steps) or "(goal already holds)"


def available_backends() -> list[str]:
    """The concrete backends whose packages are importable (without importing them)."""
    return [
        name
        for name, modules in _MODULES.items()
        if all(importlib.util.find_spec(module) is not None for module in modules)
    ]


class Planner:
    """Plans over one registry with one backend. Safe to share between threads: calls are serialised
    by a lock (the unified-planning engine keeps per-call state)."""

    def __init__(self, registry: Registry, backend: str = "auto", time_limit: float = 10.0) -> None:
        if backend not in BACKENDS:
            raise PlanningError(f"unknown planner backend '{backend}'; choose one of {', '.join(BACKENDS)}")
        if not time_limit > 0:
            raise PlanningError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
        installed = available_backends()
        if backend == "auto":
            if not installed:
                raise PlannerUnavailable(
                    f"no planner backend is installed: {_PIP['fast-downward']} (or {_PIP['pyperplan']})"
                )
            backend = installed[0]
        elif backend not in installed:
            raise PlannerUnavailable(f"the {backend} planner backend is not installed: {_PIP[backend]}")
        self.registry = registry
        self.backend = backend
        self.time_limit = float(time_limit)
        self._domains: dict[bool, str] = {}
        self._engine = None  # the unified-planning engine, made on the first Fast Downward plan
        self._lock = threading.Lock()

    def domain(self, negative_preconditions: bool = False) -> str:
        """The PDDL domain text (generated once per variant)."""
        if negative_preconditions not in self._domains:
            self._domains[negative_preconditions] = domain_pddl(
                self.registry, negative_preconditions=negative_preconditions
            )
        return self._domains[negative_preconditions]

    def plan(self, state: Iterable[Atom], goal: Goal | str) -> PlanResult:
        """The shortest sequence of ground skills that takes ``state`` to ``goal``.

        Raises :class:`Unsatisfiable`, :class:`PlannerTimeout` or :class:`PlanningError` (a bad atom
        or goal, or a backend failure).
        """
        goal = parse_goal(self.registry, goal) if isinstance(goal, str) else goal
        for lit in goal.literals:
            check_atom(self.registry, lit.atom, f"goal {goal}")
        state = check_state(self.registry, state)
        if holds(state, goal.literals):
            return PlanResult((), self.backend, 0.0, 0.0)
        positive = {lit.atom for lit in goal.literals if not lit.negated}
        contradictions = [lit for lit in goal.literals if lit.negated and lit.atom in positive]
        if contradictions:
            raise Unsatisfiable(
                f"goal {goal} asks for {', '.join(atom_text(lit.atom) for lit in contradictions)} "
                "to be both true and false"
            )
        with self._lock:
            if self.backend == "pyperplan":
                names, generate, search = self._pyperplan(state, goal)
            else:
                names, generate, search = self._fast_downward(state, goal)
        steps = self._steps(names)
        self._check(state, goal, steps)
        return PlanResult(steps, self.backend, generate, search)

    # -- backends --------------------------------------------------------------------------------------

    def _pyperplan(self, state: frozenset[Atom], goal: Goal) -> tuple[list[str] | None, float, float]:
        negated = [str(lit) for lit in goal.literals if lit.negated] + [
            f"{lit} (in {spec.name})"
            for spec in self.registry.skills.values()
            for lit in spec.preconditions
            if lit.negated
        ]
        if negated:
            raise PlanningError(
                f"pyperplan cannot plan with negated conditions: {', '.join(negated)}; use the "
                f"fast-downward backend ({_PIP['fast-downward']}) or state the goal positively"
            )
        start = time.perf_counter()
        domain, problem = self.domain(), problem_pddl(self.registry, state, goal)
        generate = time.perf_counter() - start
        with tempfile.TemporaryDirectory(prefix="meta_robot_plan_") as tmp:
            domain_file, problem_file = Path(tmp, "domain.pddl"), Path(tmp, "problem.pddl")
            domain_file.write_text(domain)
            problem_file.write_text(problem)
            start = time.perf_counter()
            out, err, code = _run_killable(
                _pyperplan_command(str(domain_file), str(problem_file)), self.time_limit
            )
            search = time.perf_counter() - start
        if code is None:
            raise PlannerTimeout(self._timeout_message(goal))
        if code != 0:
            raise PlanningError(f"pyperplan failed (exit code {code}) on goal {goal}: {_tail(err)}")
        try:
            names = json.loads(out.strip().splitlines()[-1])["plan"]
        except (IndexError, ValueError, KeyError, TypeError) as exc:
            raise PlanningError(
                f"pyperplan printed no plan for goal {goal} ({exc!r}): {_tail(out + err)}"
            ) from exc
        if names is None:
            raise Unsatisfiable(self._unsatisfiable_message(state, goal))
        return names, generate, search

    def _fast_downward(self, state: frozenset[Atom], goal: Goal) -> tuple[list[str], float, float]:
        from unified_planning.engines import PlanGenerationResultStatus as Status
        from unified_planning.io import PDDLReader

        engine = self._fast_downward_engine()
        start = time.perf_counter()
        problem = PDDLReader().parse_problem_string(
            self.domain(goal.has_negations), problem_pddl(self.registry, state, goal)
        )
        generate = time.perf_counter() - start
        start = time.perf_counter()
        result = engine.solve(problem, timeout=self.time_limit)
        search = time.perf_counter() - start
        if result.status == Status.TIMEOUT:
            raise PlannerTimeout(self._timeout_message(goal))
        if result.status in (Status.UNSOLVABLE_PROVEN, Status.UNSOLVABLE_INCOMPLETELY):
            raise Unsatisfiable(self._unsatisfiable_message(state, goal))
        if result.plan is None or result.status not in (Status.SOLVED_SATISFICING, Status.SOLVED_OPTIMALLY):
            logs = " ".join(m.message for m in result.log_messages or ())
            raise PlanningError(f"Fast Downward failed on goal {goal} ({result.status.name}): {_tail(logs)}")
        names = [
            atom_text((a.action.name, *(p.object().name for p in a.actual_parameters)))
            for a in result.plan.actions
        ]
        return names, generate, search

    def _fast_downward_engine(self):
        if self._engine is None:
            self._engine = _make_fast_downward_engine()
        return self._engine

    # -- results ---------------------------------------------------------------------------------------

    def _steps(self, names: Iterable[str]) -> tuple[GroundSkill, ...]:
        steps = []
        for name in names:
            skill, *arguments = parse_atom(name)
            try:
                steps.append(self.registry.ground(skill, arguments))
            except RegistryError as exc:
                raise PlanningError(f"the {self.backend} planner returned {name}: {exc}") from exc
        return tuple(steps)

    def _check(self, state: frozenset[Atom], goal: Goal, steps: tuple[GroundSkill, ...]) -> None:
        for index, step in enumerate(steps, start=1):
            missing = unmet(state, step.preconditions)
            if missing:
                raise PlanningError(
                    f"the {self.backend} plan for {goal} is wrong: step {index} {step} needs "
                    f"{', '.join(map(str, missing))}, which do not hold (a bug in the planner or PDDL)"
                )
            state = progress(state, step)
        missing = unmet(state, goal.literals)
        if missing:
            raise PlanningError(
                f"the {self.backend} plan for {goal} is wrong: after its {len(steps)} steps "
                f"{', '.join(map(str, missing))} still do not hold (a bug in the planner or PDDL)"
            )

    def _timeout_message(self, goal: Goal) -> str:
        return (
            f"the {self.backend} planner found no plan for {goal} within {self.time_limit:g} s and was "
            "stopped; raise the time limit or split the goal"
        )

    def _unsatisfiable_message(self, state: frozenset[Atom], goal: Goal) -> str:
        objects = {arg for lit in goal.literals for arg in lit.arguments}
        relevant = sorted(atom for atom in state if len(atom) == 1 or objects.intersection(atom[1:]))
        missing = ", ".join(map(str, unmet(state, goal.literals)))
        return (
            f"no sequence of skills reaches {goal}; unmet now: {missing}; "
            f"relevant true atoms: {' '.join(map(atom_text, relevant)) or 'none'}"
        )


def _make_fast_downward_engine():
    """unified-planning's optimal Fast Downward engine (astar(lmcut())), with its translator output
    in the engine's per-call temporary directory.

    Left alone, the Fast Downward driver writes ``output.sas`` into the current directory: two plans
    at once in one directory would overwrite each other's, and a search killed at the time limit
    leaves the file behind. Made directly rather than through the engine factory, which would print
    the engine's credits banner.
    """
    from up_fast_downward import FastDownwardOptimalPDDLPlanner

    class Engine(FastDownwardOptimalPDDLPlanner):
        def _get_cmd(self, domain_filename: str, problem_filename: str, plan_filename: str) -> list[str]:
            command = super()._get_cmd(domain_filename, problem_filename, plan_filename)
            sas_file = os.path.join(os.path.dirname(plan_filename), "output.sas")
            return [*command[:2], "--sas-file", sas_file, *command[2:]]  # after the driver's path

    return Engine()


def _pyperplan_command(domain_file: str, problem_file: str) -> list[str]:
    return [sys.executable, "-c", _PYPERPLAN_WORKER, domain_file, problem_file]


def _run_killable(command: list[str], limit: float) -> tuple[str, str, int | None]:
    """Run ``command`` in its own process group; kill the group at ``limit`` s (exit code None).

    The child gets this process's import path, so it finds pyperplan wherever this process did.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    ) as process:
        try:
            out, err = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return "", "", None
        return out, err, process.returncode


def _tail(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-limit:]
