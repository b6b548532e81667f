"""Who drives the arm: the policy or the operator (HIL-SERL-style interventions).

Policy commands pass through while the operator is idle. The moment the operator acts (dead-man held
with an axis beyond the deadzone, or a gripper action) the operator wins; policy commands are then
dropped, never forwarded, until the operator has been idle for ``handback_delay`` s. Takeovers and
handbacks are reported as :class:`Transition`s; a takeover while a policy was commanding (a command
within ``policy_timeout`` s) is an *intervention*, which the recorder logs against the episode.
All timing is explicit (``now`` in s, any monotonic clock), so behaviour is deterministic in tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from meta_robot.teleop.devices import GripperAction, OperatorSample


class Owner(Enum):
    """Whose commands reach ``robot_command``."""

    POLICY = "policy"
    OPERATOR = "operator"


@dataclass(frozen=True)
class ArbiterConfig:
    """Thresholds and delays of the hand-over. Units: s and normalised device units."""

    deadzone: float = field(
        default=0.1,
        metadata={"doc": "twist magnitude below which the operator counts as idle", "range": (0.0, 0.9)},
    )
    handback_delay: float = field(
        default=1.0, metadata={"doc": "s the operator must be idle before the policy gets control back"}
    )
    policy_timeout: float = field(
        default=0.5, metadata={"doc": "s after its last command a policy counts as no longer running"}
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {self.deadzone}")
        for name in ("handback_delay", "policy_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 s, got {value!r}")


@dataclass(frozen=True)
class Transition:
    """A change of owner. ``intervention``: the operator took over from (or handed back to) a
    running policy, as opposed to plain teleoperation with no policy."""

    owner: Owner
    device: str
    reason: str
    intervention: bool

    @property
    def active(self) -> bool:
        """Intervention.active: the operator holds control."""
        return self.owner is Owner.OPERATOR


class Arbiter:
    """Decides, tick by tick, whether the operator or the policy drives the arm."""

    def __init__(self, config: ArbiterConfig | None = None) -> None:
        self.config = config or ArbiterConfig()
        self.owner = Owner.POLICY
        self.device = ""
        self._last_operator_activity = -math.inf
        self._last_policy_command = -math.inf
        self._deadman_held = False
        self._intervening = False  # the current takeover interrupted a running policy

    @property
    def operator_active(self) -> bool:
        """The operator holds control (policy commands are dropped)."""
        return self.owner is Owner.OPERATOR

    def policy_running(self, now: float) -> bool:
        """A policy has commanded within ``policy_timeout``."""
        return now - self._last_policy_command <= self.config.policy_timeout

    def is_active(self, sample: OperatorSample) -> bool:
        """Whether a sample counts as the operator acting."""
        if sample.gripper is not GripperAction.KEEP:
            return True
        return sample.deadman and max(abs(v) for v in sample.twist) > self.config.deadzone

    def on_policy_command(self, now: float) -> bool:
        """A policy command arrived at ``now``: True if it may be forwarded to the arm."""
        self._last_policy_command = now
        return self.owner is Owner.POLICY

    def on_sample(self, sample: OperatorSample, now: float) -> Transition | None:
        """Feed one operator sample; return the change of owner it causes, if any."""
        self._deadman_held = sample.deadman
        if self.is_active(sample):
            self._last_operator_activity = now
            if self.owner is Owner.POLICY:
                self.owner = Owner.OPERATOR
                self.device = sample.device
                self._intervening = self.policy_running(now)
                return Transition(Owner.OPERATOR, sample.device, "operator moved", self._intervening)
            return None
        if self.owner is Owner.OPERATOR and now - self._last_operator_activity >= self.config.handback_delay:
            return self.hand_back("operator idle" if sample.deadman else "deadman released")
        return None

    def hand_back(self, reason: str) -> Transition | None:
        """Give control back to the policy now (e.g. on e-stop); None if the operator did not hold it."""
        if self.owner is not Owner.OPERATOR:
            return None
        self.owner = Owner.POLICY
        self._last_operator_activity = -math.inf
        return Transition(Owner.POLICY, self.device, reason, self._intervening)
