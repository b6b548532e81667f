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

from meta_robot.arm import GRIPPER_MAX_WIDTH
from meta_robot.geometry import quat_conjugate, quat_from_wxyz, quat_multiply, quat_to_rotvec
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
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        joint_ids = [m.joint(j).id for j in ARM_JOINTS]
        self._lo, self._hi = m.jnt_range[joint_ids, 0], m.jnt_range[joint_ids, 1]
        self.rest = np.asarray(workcell.scenario.arm_home, dtype=float)
        self.q_cmd = workcell.data.qpos[workcell.arm_qpos].copy()
        self.target_position: np.ndarray | None = None
        self.target_orientation: np.ndarray | None = None

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured TCP position and (x, y, z, w) orientation."""
        d, site = self.wc.data, self.wc.tcp_site
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[site])
        return d.site_xpos[site].copy(), quat_from_wxyz(quat)

    def set_target(self, position: np.ndarray, orientation: np.ndarray) -> None:
        """New TCP target (world frame); takes effect at the next step."""
        self.target_position = np.asarray(position, dtype=float).copy()
        self.target_orientation = np.asarray(orientation, dtype=float).copy()

    def hold_current(self) -> None:
        """Track the measured pose and stop the integrator where the joints are."""
        self.q_cmd = self.wc.data.qpos[self.wc.arm_qpos].copy()
        self.set_target(*self.tcp_pose())
        self.wc.data.ctrl[self.wc.arm_actuators] = self.q_cmd

    def set_gripper(self, width: float) -> None:
        """Finger opening (m, both fingers together), clipped to the hand's range."""
        width = float(np.clip(width, 0.0, GRIPPER_MAX_WIDTH))
        self.wc.data.ctrl[self.wc.gripper_actuator] = GRIPPER_CTRL_MAX * width / GRIPPER_MAX_WIDTH

    def step(self, dt: float) -> None:
        """One control update (call before each physics step)."""
        if self.target_position is None or self.target_orientation is None:
            return
        wc, g = self.wc, self.gains
        m, d = wc.model, wc.data
        position, orientation = self.tcp_pose()
        error_p = self.target_position - position
        error_r = quat_to_rotvec(quat_multiply(self.target_orientation, quat_conjugate(orientation)))
        twist = np.concatenate([g.position_gain * error_p, g.orientation_gain * error_r])
        mujoco.mj_jacSite(m, d, self._jacp, self._jacr, wc.tcp_site)
        jac = np.vstack([self._jacp[:, wc.arm_dof], self._jacr[:, wc.arm_dof]])
        jjt = jac @ jac.T + (g.damping**2) * np.eye(6)
        jac_pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
        q = d.qpos[wc.arm_qpos]
        nullspace = (np.eye(7) - jac_pinv @ jac) @ (g.nullspace_gain * (self.rest - q))
        qdot = jac_pinv @ twist + nullspace
        peak = np.max(np.abs(qdot))
        if peak > g.max_joint_speed:
            qdot *= g.max_joint_speed / peak
        self.q_cmd = np.clip(self.q_cmd + qdot * dt, q - g.max_lead, q + g.max_lead)
        self.q_cmd = np.clip(self.q_cmd, self._lo, self._hi)
        d.ctrl[wc.arm_actuators] = self.q_cmd
