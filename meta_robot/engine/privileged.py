"""What the simulator knows and the cameras must infer: where each object is and how far the drawer is open.

A policy that acts from images has to localise the object it reaches for; from a few thousand
demonstrations a behaviour-cloning loss alone teaches that slowly (the learner closed its hand 2 to
10 cm beside the object). Engine episodes store the physics state of every step, so the true scene
comes for free: the policy's image features are also trained to predict it (an auxiliary loss, as
Levine et al. 2016 pretrained their visuomotor policy's keypoints on object positions). Serving never
needs it, so recorded real-robot episodes, which lack it, train the same policy without the loss.

Per object (every free body of the scene, in model order): position (m, world frame) and
cos / sin of twice its yaw (the grasp yaws of the bar and the cube repeat every half turn); then the
drawer's opening (m).
"""

from __future__ import annotations

import mujoco
import numpy as np

from meta_robot.sim.workcell import SCENE_JOINTS

_QPOS_OFFSET = 1  # a stored state starts with the time (snapshot.STATE_SPEC), then qpos


def _free_joints(model: mujoco.MjModel) -> list[int]:
    return [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]


def privileged_names(model: mujoco.MjModel) -> tuple[str, ...]:
    """The names of :func:`privileged_state`'s columns."""
    names = []
    for j in _free_joints(model):
        body = model.joint(j).name
        names += [f"{body}.{axis}" for axis in ("x", "y", "z", "cos2yaw", "sin2yaw")]
    return (*names, *(f"{joint}.position" for joint in SCENE_JOINTS))


def privileged_state(model: mujoco.MjModel, physics: np.ndarray) -> np.ndarray:
    """(T, D) float32 scene state of stored physics states (T, state_size); no simulation needed."""
    qpos = np.asarray(physics, np.float64)[:, _QPOS_OFFSET : _QPOS_OFFSET + model.nq]
    columns = []
    for j in _free_joints(model):
        adr = int(model.jnt_qposadr[j])
        w, x, y, z = (qpos[:, adr + 3 + k] for k in range(4))
        yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        columns += [qpos[:, adr : adr + 3], np.cos(2 * yaw)[:, None], np.sin(2 * yaw)[:, None]]
    columns += [qpos[:, [int(model.joint(name).qposadr[0])]] for name in SCENE_JOINTS]
    return np.concatenate(columns, axis=1).astype(np.float32)
