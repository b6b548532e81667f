"""The symbolic state, estimated from the success classifier's predicate probabilities.

The executive plans from what the classifiers see, never from the simulator's privileged state. One
frame is noisy near a threshold, so an atom is decided over a window of consecutive frames: true when
it held on more than half of them. Frames are counted by arrival, so "the state after this skill"
means frames that arrived after the skill ended, whatever clock stamped them. Atoms the classifier
has no calibrated threshold for are unknown; the planner's closed world takes them as false, and the
estimate lists them so a log says so. What the camera cannot see (the contents of a closed drawer)
keeps the belief from before it was hidden.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meta_robot.planning.symbolic import Atom, atom_text, parse_atom


@dataclass(frozen=True)
class PredicateFrame:
    """One classifier output: every atom's probability, and its decision (None: no threshold)."""

    probabilities: Mapping[Atom, float]
    decisions: Mapping[Atom, bool | None]

    @classmethod
    def from_lists(
        cls,
        atoms: Sequence[str],
        probabilities: Sequence[float],
        thresholds: Sequence[float],
        holds: Sequence[bool],
    ) -> PredicateFrame:
        """From the parallel arrays of a ``PredicateEstimates`` message (NaN threshold: undecided)."""
        if not len(atoms) == len(probabilities) == len(thresholds) == len(holds):
            raise ValueError(
                f"predicate estimate arrays differ in length: {len(atoms)} atoms, {len(probabilities)} "
                f"probabilities, {len(thresholds)} thresholds, {len(holds)} decisions"
            )
        parsed = [parse_atom(a) for a in atoms]
        return cls(
            {a: float(p) for a, p in zip(parsed, probabilities, strict=True)},
            {
                a: None if math.isnan(t) else bool(h)
                for a, t, h in zip(parsed, thresholds, holds, strict=True)
            },
        )


@dataclass(frozen=True)
class StateEstimate:
    """The decided state over a window of frames, with each atom's mean probability as confidence."""

    atoms: frozenset[Atom]  # decided true
    confidence: Mapping[Atom, float]  # mean P(true) over the window
    unknown: frozenset[Atom]  # no calibrated threshold: taken as false
    frames: int

    def describe(self, atoms: Iterable[Atom] | None = None) -> str:
        """``(holding red_cube) 0.97, (drawer_open) 0.99`` for ``atoms`` (default: the true ones)."""
        chosen = sorted(self.atoms if atoms is None else atoms)
        return ", ".join(f"{atom_text(a)} {self.confidence.get(a, float('nan')):.2f}" for a in chosen)


def decide(frames: Sequence[PredicateFrame], one_of: Sequence[Sequence[Atom]] = ()) -> StateEstimate:
    """Majority vote per atom over ``frames`` (at least one).

    ``one_of`` lists groups of atoms of which exactly one is true in any real state (an object is
    held, on the desk, in the drawer or on the shelf). Thresholds calibrated for a low false-positive
    rate can leave every atom of a group undecided (an object where the training data seldom put it);
    then the group's most likely atom is taken: the object is somewhere, and a wrong guess costs one
    failed skill, which the executive sees and answers, where no guess makes every goal unreachable.
    """
    if not frames:
        raise ValueError("a state estimate needs at least one classifier frame")
    atoms = frames[-1].probabilities.keys()
    true: set[Atom] = set()
    unknown: set[Atom] = set()
    confidence: dict[Atom, float] = {}
    for atom in atoms:
        decisions = [f.decisions.get(atom) for f in frames]
        confidence[atom] = sum(f.probabilities.get(atom, 0.0) for f in frames) / len(frames)
        if any(d is None for d in decisions):
            unknown.add(atom)
        elif 2 * sum(bool(d) for d in decisions) > len(decisions):
            true.add(atom)
    for group in one_of:
        present = [a for a in group if a in confidence]
        if present and not true.intersection(present):
            true.add(max(present, key=confidence.__getitem__))
    return StateEstimate(frozenset(true), confidence, frozenset(unknown), len(frames))


@dataclass(frozen=True)
class Occlusion:
    """While ``when`` holds, ``hidden`` atoms cannot be seen (the contents of a closed drawer): the
    camera's verdict on them is ignored and the belief from before stands."""

    when: Atom  # e.g. ("drawer_closed",)
    hidden: str  # a predicate, e.g. "in_drawer"

    @classmethod
    def parse(cls, text: str) -> Occlusion:
        """``"(drawer_closed) hides in_drawer"``."""
        when, sep, hidden = text.partition(" hides ")
        if not sep or not hidden.strip():
            raise ValueError(f"'{text}' is not an occlusion like '(drawer_closed) hides in_drawer'")
        return cls(parse_atom(when), hidden.strip())


def persist_hidden(
    estimate: StateEstimate,
    belief: frozenset[Atom] | None,
    occlusions: Sequence[Occlusion],
    one_of: Sequence[Sequence[Atom]] = (),
) -> StateEstimate:
    """``estimate`` with the believed hidden atoms kept while their occluder holds.

    An object believed in the drawer stays there once the drawer is closed, whatever the camera,
    which cannot see it, suggests; its other exclusive atoms (on the desk, held) are dropped.
    """
    if belief is None:
        return estimate
    atoms = set(estimate.atoms)
    for occlusion in occlusions:
        if occlusion.when not in atoms:
            continue
        for kept in (a for a in belief if a[0] == occlusion.hidden):
            for group in one_of:
                if kept in group:
                    atoms.difference_update(group)
            atoms.add(kept)
    if atoms == estimate.atoms:
        return estimate
    return StateEstimate(frozenset(atoms), estimate.confidence, estimate.unknown, estimate.frames)


class StateEstimator:
    """Keeps the newest classifier frames (filled by a ROS callback) and decides the state on demand.

    Thread-safe: the subscription adds frames while the executive, on another thread, waits for
    enough fresh ones.
    """

    def __init__(
        self,
        window: int = 5,
        one_of: Sequence[Sequence[Atom]] = (),
        occlusions: Sequence[Occlusion] = (),
    ) -> None:
        if window < 1:
            raise ValueError(f"state estimation window must be at least 1 frame, got {window}")
        self.window = window
        self.one_of = [tuple(group) for group in one_of]
        self.occlusions = list(occlusions)
        self._belief: frozenset[Atom] | None = None
        self._frames: deque[PredicateFrame] = deque(maxlen=window)
        self._count = 0
        self._changed = threading.Condition()

    def add(self, frame: PredicateFrame) -> None:
        with self._changed:
            self._frames.append(frame)
            self._count += 1
            self._changed.notify_all()

    def mark(self) -> int:
        """A marker for :meth:`wait`: only frames that arrive after it count."""
        with self._changed:
            return self._count

    def wait(self, after: int | None = None, timeout: float = 10.0) -> StateEstimate:
        """The state over ``window`` frames that arrived after ``after`` (default: now).

        Raises TimeoutError naming the shortfall when the classifier does not deliver in ``timeout``
        seconds: planning on stale evidence is the error this prevents.
        """
        with self._changed:
            start = self._count if after is None else after
            if not self._changed.wait_for(lambda: self._count - start >= self.window, timeout):
                raise TimeoutError(
                    f"the success classifier delivered {self._count - start} of {self.window} fresh "
                    f"predicate estimates in {timeout:.1f} s (is classifier/predicates published?)"
                )
            estimate = decide(list(self._frames), self.one_of)
            estimate = persist_hidden(estimate, self._belief, self.occlusions, self.one_of)
            self._belief = estimate.atoms
            return estimate

    def forget(self) -> None:
        """Start a new task from what is seen (a reset scene has no history)."""
        with self._changed:
            self._belief = None
