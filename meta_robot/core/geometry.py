"""Small rotation helpers on unit quaternions in ROS order (x, y, z, w), numpy only.

Kept here so the safety layer, controllers and nodes share one implementation and one convention.
"""

from __future__ import annotations

import numpy as np

IDENTITY_QUAT = np.array([0.0, 0.0, 0.0, 1.0])


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternion with non-negative w (a canonical sign); raises on a zero quaternion."""
    q = np.asarray(q, dtype=float)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"not a rotation: quaternion {q} has norm {norm}")
    q = q / norm
    return -q if q[3] < 0 else q


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b, then a)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion."""
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (rad, in [0, pi]) of the rotation taking a to b."""
    dot = abs(float(np.dot(quat_normalize(a), quat_normalize(b))))
    return 2.0 * float(np.arccos(min(1.0, dot)))


def quat_slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from a (t=0) to b (t=1) along the shorter arc."""
    a = quat_normalize(a)
    b = quat_normalize(b)
    dot = float(np.dot(a, b))
    if dot < 0.0:
        b, dot = -b, -dot
    if dot > 0.9995:
        return quat_normalize(a + t * (b - a))
    theta = np.arccos(dot)
    return quat_normalize((np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta))


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, rad) of a unit quaternion."""
    q = quat_normalize(q)
    s = np.linalg.norm(q[:3])
    if s < 1e-12:
        return np.zeros(3)
    return q[:3] / s * 2.0 * np.arctan2(s, q[3])


def rotvec_to_quat(v: np.ndarray) -> np.ndarray:
    """Unit quaternion of a rotation vector (axis * angle, rad)."""
    v = np.asarray(v, dtype=float)
    angle = np.linalg.norm(v)
    if angle < 1e-12:
        return IDENTITY_QUAT.copy()
    axis = v / angle
    return np.concatenate([axis * np.sin(angle / 2.0), [np.cos(angle / 2.0)]])


def quat_from_wxyz(q: np.ndarray) -> np.ndarray:
    """Convert MuJoCo's (w, x, y, z) order to ROS's (x, y, z, w)."""
    return np.array([q[1], q[2], q[3], q[0]], dtype=float)


def quat_to_wxyz(q: np.ndarray) -> np.ndarray:
    """Convert ROS's (x, y, z, w) order to MuJoCo's (w, x, y, z)."""
    return np.array([q[3], q[0], q[1], q[2]], dtype=float)
