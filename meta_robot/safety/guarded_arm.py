"""An arm backend behind a safety layer, ticked by whoever owns the control loop.

The drivers (sim bridge, franky) and the in-process rollouts step the arm the same way: read it, let
the safety layer decide, then track its target or hold. Holding is commanded once per hold, not
every tick, so a backend's hold (a stopped motion on the real arm) is not restarted continuously.
"""

from __future__ import annotations

from meta_robot.core.arm import ArmBackend, ArmState
from meta_robot.safety.layer import SafetyLayer


class GuardedArm:
    """``backend`` driven only through ``safety``."""

    def __init__(self, backend: ArmBackend, safety: SafetyLayer) -> None:
        self.backend = backend
        self.safety = safety
        self._holding = True  # a connected backend holds where it is

    def tick(self, now: float, dt: float) -> ArmState:
        """Read the arm, run the safety layer, command its target or hold; return the state read."""
        state = self.backend.read_state()
        out = self.safety.update(state, now, dt)
        if out.target is not None:
            self.backend.command(out.target)
            self._holding = False
        elif not self._holding:
            self.hold()
        return state

    def hold(self) -> None:
        """Stop the arm now (e-stop), whatever the safety layer last decided."""
        self.backend.hold()
        self._holding = True
