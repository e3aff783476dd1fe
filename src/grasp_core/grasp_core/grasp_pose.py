"""Top-down grasp poses: jaw angle <-> quaternion, rotation index <-> angle.

Convention: the gripper's tool z axis points straight down (-z of the base frame) and the jaws close
along the tool x axis. A grasp with angle `a` closes along (cos a, sin a, 0) in the base frame, which is
the direction (du, dv) = (cos a, sin a) in heightmap pixels. Rotation index i of R means a = i * 2 pi / R.
"""
from __future__ import annotations

import math

import numpy as np


def rotation_angle(index: int, num_rotations: int) -> float:
    """Jaw angle (radians, in [0, 2 pi)) of discrete rotation `index`."""
    if num_rotations <= 0 or not 0 <= index < num_rotations:
        raise ValueError(f"rotation index {index} is not in [0, {num_rotations})")
    return index * 2.0 * math.pi / num_rotations


def fold_jaw_yaw(angle: float) -> float:
    """The jaw is symmetric (angles a and a + pi grasp alike): `angle` folded into [-pi/2, pi/2), the wrist turn
    closest to zero. The simulated and the real arm both execute grasps at this yaw."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


def top_down_quaternion(angle: float) -> tuple[float, float, float, float]:
    """Quaternion (x, y, z, w) of Rz(angle) * Rx(pi): tool z down, tool x (closing axis) at `angle`."""
    half = 0.5 * angle
    # Rz(a) = (0, 0, sin a/2, cos a/2); Rx(pi) = (1, 0, 0, 0); product q = Rz * Rx.
    return (math.cos(half), math.sin(half), 0.0, 0.0)


def quaternion_to_angle(q: tuple[float, float, float, float]) -> float:
    """Inverse of top_down_quaternion: the closing-axis yaw of a top-down quaternion (x, y, z, w)."""
    x, y, z, w = q
    # Tool x axis in the base frame = first column of the rotation matrix.
    r00 = 1 - 2 * (y * y + z * z)
    r10 = 2 * (x * y + z * w)
    r20 = 2 * (x * z - y * w)
    if abs(r20) > 1e-3 or abs(1 - 2 * (x * x + y * y) + 1) > 1e-3:  # r22 must be -1 (tool z down)
        raise ValueError(f"quaternion {q} is not a top-down grasp orientation")
    return math.atan2(r10, r00) % (2 * math.pi)


def rotation_matrix_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
