"""Cartesian TCP control of the simulated Panda over its joint position actuators.

Every physics step, damped-least-squares differential IK turns the 6-D TCP error (measured pose to
target) into a joint velocity, with a null-space pull toward a comfortable posture. The velocity is
integrated into the joint position targets sent to the actuators, so any steady-state error of the
position servos is integrated away. Joint speed and the integrator's lead over the measured joints
are bounded, so a far target can never make the arm lunge (the safety layer already limits it).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from meta_robot.core.arm import GRIPPER_MAX_WIDTH
from meta_robot.core.geometry import quat_from_wxyz, quat_to_wxyz
from meta_robot.sim.workcell import ARM_JOINTS, Workcell

GRIPPER_CTRL_MAX = 255.0  # Menagerie's actuator8 maps 0..255 to 0..0.04 m per finger


@dataclass(frozen=True)
class IkGains:
    """Gains of the Cartesian controller (1/s, m, rad/s, rad)."""

    position_gain: float = 25.0  # 1/s: TCP position error -> linear velocity
    orientation_gain: float = 20.0  # 1/s: TCP rotation error -> angular velocity
    damping: float = 0.05  # DLS damping (m)
    nullspace_gain: float = 2.0  # 1/s toward the rest posture
    max_joint_speed: float = 2.0  # rad/s
    max_lead: float = 0.15  # rad the joint targets may run ahead of the measured joints


class CartesianIkController:
    """Tracks a TCP pose target (world frame) with the Panda's seven position actuators."""

    def __init__(self, workcell: Workcell, gains: IkGains | None = None) -> None:
        self.wc = workcell
        self.gains = gains or IkGains()
        m = workcell.model
        # The arm's dofs and qpos entries are contiguous: plain slices avoid fancy-index copies.
        self._dof = _contiguous(workcell.arm_dof)
        self._qpos = _contiguous(workcell.arm_qpos)
        self._jac = np.zeros((6, m.nv))
        joint_ids = [m.joint(j).id for j in ARM_JOINTS]
        self._lo, self._hi = m.jnt_range[joint_ids, 0], m.jnt_range[joint_ids, 1]
        self._damping = (self.gains.damping**2) * np.eye(6)
        self._error = np.zeros(6)
        self._local_error = np.zeros(3)
        self._site_quat = np.zeros(4)
        self._target_wxyz = np.zeros(4)
        self.rest = np.asarray(workcell.scenario.arm_home, dtype=float)
        self.q_cmd = workcell.data.qpos[self._qpos].copy()
        self.target_position: np.ndarray | None = None
        self.target_orientation: np.ndarray | None = None

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured TCP position and (x, y, z, w) orientation."""
        d, site = self.wc.data, self.wc.tcp_site
        mujoco.mju_mat2Quat(self._site_quat, d.site_xmat[site])
        return d.site_xpos[site].copy(), quat_from_wxyz(self._site_quat)

    def set_target(self, position: np.ndarray, orientation: np.ndarray) -> None:
        """New TCP target (world frame); takes effect at the next step."""
        self.target_position = np.asarray(position, dtype=float).copy()
        self.target_orientation = np.asarray(orientation, dtype=float).copy()
        self._target_wxyz = quat_to_wxyz(self.target_orientation)

    def hold_current(self) -> None:
        """Track the measured pose and stop the integrator where the joints are."""
        self.q_cmd = self.wc.data.qpos[self._qpos].copy()
        self.set_target(*self.tcp_pose())
        self.wc.data.ctrl[self.wc.arm_actuators] = self.q_cmd

    def set_gripper(self, width: float) -> None:
        """Finger opening (m, both fingers together), clipped to the hand's range."""
        width = float(np.clip(width, 0.0, GRIPPER_MAX_WIDTH))
        self.wc.data.ctrl[self.wc.gripper_actuator] = GRIPPER_CTRL_MAX * width / GRIPPER_MAX_WIDTH

    def step(self, dt: float) -> None:
        """One control update (call before each physics step)."""
        if self.target_position is None:
            return
        wc, g = self.wc, self.gains
        m, d = wc.model, wc.data
        site = wc.tcp_site
        error = self._error
        error[:3] = g.position_gain * (self.target_position - d.site_xpos[site])
        mujoco.mju_mat2Quat(self._site_quat, d.site_xmat[site])
        # mju_subQuat gives the rotation from the site to the target in the site's frame; rotate it
        # into the world frame, where the rotational Jacobian lives.
        mujoco.mju_subQuat(self._local_error, self._target_wxyz, self._site_quat)
        mujoco.mju_rotVecQuat(error[3:], self._local_error, self._site_quat)
        error[3:] *= g.orientation_gain
        mujoco.mj_jacSite(m, d, self._jac[:3], self._jac[3:], site)
        jac = self._jac[:, self._dof]
        q = d.qpos[self._qpos]
        posture = g.nullspace_gain * (self.rest - q)
        # DLS: qdot = J^T (J J^T + l^2 I)^-1 twist, plus the posture term projected into J's null space.
        solved = np.linalg.solve(jac @ jac.T + self._damping, np.column_stack([error, jac @ posture]))
        qdot = jac.T @ (solved[:, 0] - solved[:, 1]) + posture
        peak = np.abs(qdot).max()
        if peak > g.max_joint_speed:
            qdot *= g.max_joint_speed / peak
        self.q_cmd = np.clip(
            np.clip(self.q_cmd + qdot * dt, q - g.max_lead, q + g.max_lead), self._lo, self._hi
        )
        d.ctrl[wc.arm_actuators] = self.q_cmd


def _contiguous(indices: np.ndarray) -> slice:
    """A slice equal to ``indices``, which must be consecutive (raises otherwise)."""
    start = int(indices[0])
    if not np.array_equal(indices, np.arange(start, start + len(indices))):
        raise ValueError(f"expected consecutive indices, got {indices.tolist()}")
    return slice(start, start + len(indices))
