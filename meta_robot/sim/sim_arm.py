"""The simulated arm behind the ArmBackend contract, so the sim bridge drives it like a real one."""

from __future__ import annotations

import mujoco
import numpy as np

from meta_robot.core.arm import GRIPPER_MAX_WIDTH, ArmBackend, ArmState, ArmTarget, Pose
from meta_robot.sim.ik_controller import GRIPPER_CTRL_MAX, CartesianIkController, IkGains
from meta_robot.sim.workcell import ROBOT_BODIES_PREFIX, Workcell

FINGER_BODIES = ("panda_left_finger", "panda_right_finger")
GRASP_GAP = 0.004  # m: fingers this far wider than commanded, while touching something, hold it


class SimArm(ArmBackend):
    """A Panda in the workcell, tracked by the Cartesian IK controller at every physics step."""

    def __init__(self, workcell: Workcell, gains: IkGains | None = None) -> None:
        self.wc = workcell
        self.controller = CartesianIkController(workcell, gains)
        self._commanded_width = float(np.sum(workcell.data.qpos[workcell.finger_qpos]))
        m = workcell.model
        self._robot_bodies = {i for i in range(m.nbody) if m.body(i).name.startswith(ROBOT_BODIES_PREFIX)}
        self._hand_bodies = {m.body(n).id for n in ("panda_hand", *FINGER_BODIES)}
        self._finger_bodies = {m.body(n).id for n in FINGER_BODIES}
        self._tcp_vel = np.zeros(6)
        self._connected = False

    def connect(self) -> None:
        """Start tracking the arm's current pose."""
        self.controller.hold_current()
        self._connected = True

    def read_state(self) -> ArmState:
        """Joint, TCP, gripper and contact state from the simulation."""
        wc, d = self.wc, self.wc.data
        position, orientation = self.controller.tcp_pose()
        mujoco.mj_objectVelocity(
            wc.model, d, mujoco.mjtObj.mjOBJ_SITE, wc.tcp_site, self._tcp_vel, 0
        )  # [angular, linear] in the world frame
        fingers = d.qpos[wc.finger_qpos].copy()
        width = float(np.sum(fingers))
        force, finger_contact = self._hand_contacts()
        return ArmState(
            stamp=wc.time,
            joint_positions=d.qpos[wc.arm_qpos].copy(),
            joint_velocities=d.qvel[wc.arm_dof].copy(),
            tcp_pose=Pose(position, orientation),
            tcp_linear_velocity=self._tcp_vel[3:].copy(),
            gripper_width=width,
            gripper_grasped=finger_contact and width > self._commanded_width + GRASP_GAP,
            external_force=force,
            finger_positions=fingers,
        )

    def _hand_contacts(self) -> tuple[np.ndarray, bool]:
        """Net contact force on the hand from the world (N) and whether both fingers touch an object."""
        m, d = self.wc.model, self.wc.data
        total = np.zeros(3)
        touching: set[int] = set()
        wrench = np.zeros(6)
        for i in range(d.ncon):
            contact = d.contact[i]
            b1, b2 = m.geom_bodyid[contact.geom1], m.geom_bodyid[contact.geom2]
            if (b1 in self._hand_bodies) == (b2 in self._hand_bodies):
                continue
            other = b2 if b1 in self._hand_bodies else b1
            if other in self._robot_bodies:
                continue
            mujoco.mj_contactForce(m, d, i, wrench)
            world = contact.frame.reshape(3, 3).T @ wrench[:3]  # contact frame -> world, on body 1
            total += world if b2 in self._hand_bodies else -world
            hand_body = b1 if b1 in self._hand_bodies else b2
            if hand_body in self._finger_bodies:
                touching.add(hand_body)
        return total, touching == self._finger_bodies

    def command(self, target: ArmTarget) -> None:
        """Track a safe target."""
        self.controller.set_target(target.pose.position, target.pose.orientation)
        self._commanded_width = float(target.gripper_width)
        self.controller.set_gripper(target.gripper_width)

    def hold(self) -> None:
        """Stop where the arm is."""
        self.controller.hold_current()

    def recover(self) -> None:
        """The simulated arm has no latched faults; holding is the whole recovery."""
        self.controller.hold_current()

    def disconnect(self) -> None:
        """Leave the simulated arm holding still."""
        if self._connected:
            self.controller.hold_current()
            self._connected = False

    def step(self, n: int = 1) -> None:
        """Advance physics ``n`` steps, running the controller before each."""
        m, d = self.wc.model, self.wc.data
        for _ in range(n):
            self.controller.step(m.opt.timestep)
            mujoco.mj_step(m, d)
        # mj_step leaves body, site and camera poses at the state before its integration: recompute
        # them, so the TCP pose read and the frames rendered belong to the joints published with them
        # (the physics is unchanged: the next mj_step recomputes them from qpos anyway).
        mujoco.mj_kinematics(m, d)
        mujoco.mj_camlight(m, d)

    def after_restore(self) -> None:
        """After a stored simulator state was put back (:func:`meta_robot.sim.snapshot.restore`):
        take the commanded finger width from the restored gripper control and hold where the arm is,
        so :meth:`read_state` (the grasp flag included) reads as it did when the state was stored."""
        ctrl = float(self.wc.data.ctrl[self.wc.gripper_actuator])
        self._commanded_width = ctrl * GRIPPER_MAX_WIDTH / GRIPPER_CTRL_MAX
        self.controller.hold_current()

    def reset_controller(self) -> None:
        """After a workcell reset: track the new home pose, gripper as the scenario left it."""
        self.controller.rest = np.asarray(self.wc.scenario.arm_home, dtype=float)
        self._commanded_width = float(np.sum(self.wc.data.qpos[self.wc.finger_qpos]))
        self.controller.hold_current()
