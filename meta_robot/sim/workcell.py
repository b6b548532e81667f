"""The simulated workcell: sim/workcell.xml with Menagerie's Panda attached at the world origin.

Pure MuJoCo, no ROS. The world frame is the robot's base frame (panda_link0). Resets apply a
scenario with a seed; perturbations move an object as a person would; object states are the
privileged truth used for evaluation and scripted operators, never by production nodes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mujoco
import numpy as np

from meta_robot.core import paths
from meta_robot.core.geometry import quat_from_wxyz
from meta_robot.sim.assets import panda_mjcf
from meta_robot.sim.scenario import Scenario, load_scenario

logger = logging.getLogger(__name__)

PREFIX = "panda_"  # Menagerie names get this prefix: panda_joint1, panda_hand, panda_actuator8...
ARM_JOINTS = tuple(f"{PREFIX}joint{i}" for i in range(1, 8))
FINGER_JOINTS = (f"{PREFIX}finger_joint1", f"{PREFIX}finger_joint2")
ARM_ACTUATORS = tuple(f"{PREFIX}actuator{i}" for i in range(1, 8))
GRIPPER_ACTUATOR = f"{PREFIX}actuator8"
HAND_BODY = f"{PREFIX}hand"
ROBOT_BODIES_PREFIX = PREFIX
TCP_OFFSET = 0.1034  # m from the hand frame along its z axis: the fingertip centre
SCENE_JOINTS = ("drawer_slide",)


@dataclass(frozen=True)
class ObjectState:
    """Pose and velocity of one free object, world frame."""

    name: str
    position: np.ndarray
    orientation: np.ndarray  # (x, y, z, w)
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray


def build_model() -> mujoco.MjModel:
    """Compile the workcell with the Panda attached, a TCP site and a wrist camera on the hand."""
    spec = mujoco.MjSpec.from_file(str(paths.sim_path("workcell.xml")))
    panda = mujoco.MjSpec.from_file(str(panda_mjcf()))
    for light in list(panda.lights):  # the workcell has its own lighting
        panda.delete(light)
    for body in panda.bodies:
        if body.name != "world":
            body.gravcomp = 1.0  # the Franka controller compensates gravity; so does the sim
    frame = spec.worldbody.add_frame(pos=[0.0, 0.0, 0.0])
    frame.attach_body(panda.body("link0"), PREFIX, "")
    hand = spec.body(HAND_BODY)
    hand.add_site(name="tcp", pos=[0.0, 0.0, TCP_OFFSET], size=[0.004, 0.004, 0.004], group=5)
    # Wrist camera beside the hand looking along the fingers (MuJoCo cameras look along -z).
    hand.add_camera(name="wrist", pos=[0.06, 0.0, 0.02], quat=[0.0, 1.0, 0.0, 0.0], fovy=70.0)
    return spec.compile()


class Workcell:
    """The compiled scene, its current scenario, and the operations a simulator offers."""

    def __init__(self, scenario: str | Scenario = "default") -> None:
        self.model = build_model()
        self.data = mujoco.MjData(self.model)
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.object_names: tuple[str, ...] = tuple(self.scenario.objects)
        self._free_joint_qpos = {}
        self._free_joint_dof = {}
        for name in self.object_names:
            joint = self.model.joint(name)
            self._free_joint_qpos[name] = int(joint.qposadr[0])
            self._free_joint_dof[name] = int(joint.dofadr[0])
        self.arm_qpos = np.array([self.model.joint(j).qposadr[0] for j in ARM_JOINTS])
        self.arm_dof = np.array([self.model.joint(j).dofadr[0] for j in ARM_JOINTS])
        self.finger_qpos = np.array([self.model.joint(j).qposadr[0] for j in FINGER_JOINTS])
        self.arm_actuators = np.array([self.model.actuator(a).id for a in ARM_ACTUATORS])
        self.gripper_actuator = self.model.actuator(GRIPPER_ACTUATOR).id
        self.tcp_site = self.model.site("tcp").id
        self.seed: int | None = None

    @property
    def scenario_name(self) -> str:
        """Name of the scenario of the last reset."""
        return self.scenario.name

    @property
    def time(self) -> float:
        """Simulation time (s)."""
        return float(self.data.time)

    def reset(self, seed: int, scenario: str | None = None) -> None:
        """Put the arm home and the objects and drawer where the scenario says for ``seed``."""
        if scenario is not None and scenario != self.scenario.name:
            self.scenario = load_scenario(scenario)
            missing = set(self.scenario.objects) - set(self._free_joint_qpos)
            if missing:
                raise ValueError(f"scenario '{scenario}' names objects not in the scene: {sorted(missing)}")
            self.object_names = tuple(self.scenario.objects)
        state = self.scenario.sample(seed)
        m, d = self.model, self.data
        now = d.time  # time never runs backwards: /clock is the graph's clock in sim
        mujoco.mj_resetData(m, d)
        d.time = now
        d.qpos[self.arm_qpos] = self.scenario.arm_home
        d.ctrl[self.arm_actuators] = self.scenario.arm_home
        opening = 0.04 if self.scenario.gripper_open else 0.0
        d.qpos[self.finger_qpos] = opening
        d.ctrl[self.gripper_actuator] = 255.0 * opening / 0.04
        d.qpos[m.joint("drawer_slide").qposadr[0]] = state.drawer_opening
        for name, (x, y, yaw) in state.objects.items():
            self._set_object_pose(name, np.array([x, y, self._rest_height(name)]), yaw)
        mujoco.mj_forward(m, d)
        self.seed = seed
        logger.info("workcell reset: scenario '%s' seed %d", self.scenario.name, seed)

    def _rest_height(self, name: str) -> float:
        """Height of an object's centre when resting on the desk (half its vertical extent)."""
        geom = self.model.geom(self.model.body(name).geomadr[0])
        size = geom.size
        if geom.type[0] == mujoco.mjtGeom.mjGEOM_BOX:
            return float(size[2]) + 0.0005
        if geom.type[0] == mujoco.mjtGeom.mjGEOM_CYLINDER:
            return float(size[1]) + 0.0005
        return float(self.model.geom_rbound[geom.id]) + 0.0005

    def _set_object_pose(self, name: str, position: np.ndarray, yaw: float) -> None:
        adr, dof = self._free_joint_qpos[name], self._free_joint_dof[name]
        self.data.qpos[adr : adr + 3] = position
        self.data.qpos[adr + 3 : adr + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        self.data.qvel[dof : dof + 6] = 0.0

    def perturb(self, name: str, displacement: np.ndarray, yaw: float = 0.0) -> None:
        """Move object ``name`` by ``displacement`` (m, world) and turn it by ``yaw`` about z."""
        if name not in self._free_joint_qpos:
            raise KeyError(f"unknown object '{name}'; objects: {list(self._free_joint_qpos)}")
        displacement = np.asarray(displacement, dtype=float).reshape(3)
        if not (np.all(np.isfinite(displacement)) and np.isfinite(yaw)):
            raise ValueError("perturbation must be finite")
        adr = self._free_joint_qpos[name]
        q = self.data.qpos[adr + 3 : adr + 7].copy()
        turn = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
        new_q = np.empty(4)
        mujoco.mju_mulQuat(new_q, turn, q)
        self.data.qpos[adr : adr + 3] += displacement
        self.data.qpos[adr + 3 : adr + 7] = new_q
        dof = self._free_joint_dof[name]
        self.data.qvel[dof : dof + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def object_states(self) -> list[ObjectState]:
        """Privileged pose and velocity of every object."""
        states = []
        for name in self.object_names:
            adr, dof = self._free_joint_qpos[name], self._free_joint_dof[name]
            states.append(
                ObjectState(
                    name=name,
                    position=self.data.qpos[adr : adr + 3].copy(),
                    orientation=quat_from_wxyz(self.data.qpos[adr + 3 : adr + 7]),
                    linear_velocity=self.data.qvel[dof : dof + 3].copy(),
                    angular_velocity=self.data.qvel[dof + 3 : dof + 6].copy(),
                )
            )
        return states

    def scene_joint_positions(self) -> dict[str, float]:
        """Positions of the scene's own joints (the drawer slide, m)."""
        return {j: float(self.data.qpos[self.model.joint(j).qposadr[0]]) for j in SCENE_JOINTS}

    def step(self, n: int = 1) -> None:
        """Advance physics ``n`` steps with the current controls."""
        mujoco.mj_step(self.model, self.data, nstep=n)
