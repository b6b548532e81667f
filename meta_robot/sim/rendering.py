"""Offscreen RGB-D rendering of the workcell cameras, producing the same CameraFrame as a RealSense.

One render pass per camera yields both colour and depth (``mjr_readPixels`` reads both buffers).
Shadows, reflections and the skybox are off, and by default the robot is drawn with its collision
meshes instead of Menagerie's detailed visual meshes: on a CPU renderer (Mesa llvmpipe under
``MUJOCO_GL=egl``) that is 120 front+wrist pairs/s at 128x128 instead of 19 (measured with
benchmarks/bench_sim_step.py), which is what lets both cameras run at camera rate on 2 cores.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from meta_robot.camera.frames import CameraFrame, CameraIntrinsics, depth_metres_to_mm
from meta_robot.sim.workcell import Workcell

# Menagerie puts the Panda's visual meshes in geom group 2 and its collision meshes in group 3.
ROBOT_MESH_GROUPS = {"collision": {2: 0, 3: 1}, "visual": {2: 1, 3: 0}}


class WorkcellRenderer:
    """Renders named MJCF cameras of a workcell at a fixed size."""

    def __init__(
        self, workcell: Workcell, width: int = 128, height: int = 128, robot_meshes: str = "collision"
    ) -> None:
        m = workcell.model
        if not (0 < width <= m.vis.global_.offwidth and 0 < height <= m.vis.global_.offheight):
            raise ValueError(
                f"camera size {width}x{height} exceeds the offscreen buffer "
                f"{m.vis.global_.offwidth}x{m.vis.global_.offheight} set in sim/workcell.xml"
            )
        self.wc = workcell
        self.width, self.height = width, height
        self._gl = mujoco.GLContext(width, height)
        self._gl.make_current()
        self._scene = mujoco.MjvScene(m, maxgeom=2000)
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):  # fmt: skip
            self._scene.flags[flag] = 0
        self._context = mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        if robot_meshes not in ROBOT_MESH_GROUPS:
            raise ValueError(f"robot_meshes must be one of {sorted(ROBOT_MESH_GROUPS)}, got '{robot_meshes}'")
        self._option = mujoco.MjvOption()
        for group, visible in ROBOT_MESH_GROUPS[robot_meshes].items():
            self._option.geomgroup[group] = visible
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._rgb = np.empty((height, width, 3), dtype=np.uint8)
        self._depth = np.empty((height, width), dtype=np.float32)
        extent = m.stat.extent
        self._near, self._far = m.vis.map.znear * extent, m.vis.map.zfar * extent
        self.camera_names = tuple(m.camera(i).name for i in range(m.ncam))

    def _camera_id(self, camera: str) -> int:
        if camera not in self.camera_names:
            raise KeyError(f"unknown camera '{camera}'; cameras: {list(self.camera_names)}")
        return self.wc.model.camera(camera).id

    def intrinsics(self, camera: str) -> CameraIntrinsics:
        """Pinhole intrinsics from the camera's vertical field of view (square pixels)."""
        fovy = math.radians(float(self.wc.model.cam_fovy[self._camera_id(camera)]))
        f = 0.5 * self.height / math.tan(fovy / 2.0)
        return CameraIntrinsics(self.width, self.height, f, f, (self.width - 1) / 2, (self.height - 1) / 2)

    def render(self, camera: str) -> CameraFrame:
        """RGB + aligned depth (mm) of ``camera`` now, stamped with sim time."""
        m, d = self.wc.model, self.wc.data
        self._gl.make_current()
        self._camera.fixedcamid = self._camera_id(camera)
        mujoco.mjv_updateScene(
            m, d, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene
        )
        mujoco.mjr_render(self._viewport, self._scene, self._context)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._viewport, self._context)
        # OpenGL's origin is bottom-left; images are top-left. Depth buffer -> metres along the axis.
        rgb = np.flipud(self._rgb).copy()
        z = np.flipud(self._depth).astype(np.float64)
        near, far = self._near, self._far
        depth_m = near / (1.0 - z * (1.0 - near / far))
        depth_m[z >= 1.0] = 0.0  # nothing there
        return CameraFrame(d.time, rgb, depth_metres_to_mm(depth_m), self.intrinsics(camera))

    def close(self) -> None:
        """Release the GL context."""
        self._context.free()
        self._gl.free()
