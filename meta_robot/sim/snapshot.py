"""Simulator states small enough to keep for every control step, and exact enough to come back to.

The data engine stores, per step, the physics state (time, joint positions and velocities, controls
and the constraint solver's warm start) instead of camera images: images are rendered from it later,
at whatever resolution a model needs (the robomimic / ManiSkill way), and a stored state can be
restored to relabel or to resume from it. A fingerprint of the compiled model travels with the states,
so states recorded against another scene are refused instead of silently misread.
"""

from __future__ import annotations

import hashlib

import mujoco
import numpy as np

# Full physics (time, qpos, qvel, act, mocap, plugin state) + controls + the solver's warm start:
# restoring these and stepping reproduces the original trajectory bit for bit.
_S = mujoco.mjtState
STATE_SPEC = _S.mjSTATE_FULLPHYSICS | _S.mjSTATE_CTRL | _S.mjSTATE_WARMSTART


class SnapshotError(ValueError):
    """A stored state that does not belong to this model."""


def state_size(model: mujoco.MjModel) -> int:
    return int(mujoco.mj_stateSize(model, STATE_SPEC))


def capture(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """The (state_size,) float64 state of ``data`` now."""
    out = np.empty(state_size(model), dtype=np.float64)
    mujoco.mj_getState(model, data, out, STATE_SPEC)
    return out


def restore(model: mujoco.MjModel, data: mujoco.MjData, state: np.ndarray) -> None:
    """Put ``data`` back into ``state`` and recompute everything derived from it (poses, contacts)."""
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (state_size(model),):
        raise SnapshotError(f"state of {state.shape} values; this model's states have {state_size(model)}")
    mujoco.mj_setState(model, data, state, STATE_SPEC)
    mujoco.mj_forward(model, data)


def model_fingerprint(model: mujoco.MjModel) -> str:
    """A short digest of what a state's layout and meaning depend on: sizes and the joint layout."""
    parts = [
        np.array([model.nq, model.nv, model.na, model.nu, model.nbody, model.ngeom], np.int64).tobytes(),
        np.asarray(model.jnt_type, np.int64).tobytes(),
        np.asarray(model.jnt_qposadr, np.int64).tobytes(),
        np.round(np.asarray(model.body_pos, np.float64), 6).tobytes(),
        np.round(np.asarray(model.geom_size, np.float64), 6).tobytes(),
        np.array([state_size(model)], np.int64).tobytes(),
    ]
    return hashlib.sha256(b"".join(parts)).hexdigest()[:16]
