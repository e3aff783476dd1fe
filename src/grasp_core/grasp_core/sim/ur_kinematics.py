"""Universal Robots arms from their published Denavit-Hartenberg parameters (no meshes, no downloads).

Standard DH: the transform from link frame i-1 to link frame i is Rz(q_i) Tz(d_i) Tx(a_i) Rx(alpha_i);
q = 0 is UR's zero pose (arm stretched out horizontally). Frame 0 is the UR `base` frame (the controller's,
z up), frame 6 the `tool0` flange (z out of the flange). Values: Universal Robots, "DH parameters for
calculations of kinematics and dynamics" (UR support article), CB3/e-series UR5 and UR3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

JOINT_NAMES = ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
               "wrist_1_joint", "wrist_2_joint", "wrist_3_joint")


@dataclass(frozen=True)
class URParams:
    """One UR arm: DH parameters (metres, radians), link masses (kg), capsule radii (m), joint torque limits (N m)."""

    name: str
    d: tuple[float, ...]
    a: tuple[float, ...]
    alpha: tuple[float, ...]
    masses: tuple[float, ...]
    link_radii: tuple[float, ...]
    torque_limits: tuple[float, ...]

    @property
    def reach(self) -> float:
        """Upper-arm + forearm length: the radius the wrist centre can reach around the shoulder."""
        return abs(self.a[1]) + abs(self.a[2])


_ALPHA = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)

UR5 = URParams(
    name="ur5",
    d=(0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823),
    a=(0.0, -0.425, -0.39225, 0.0, 0.0, 0.0),
    alpha=_ALPHA,
    masses=(3.7, 8.393, 2.33, 1.219, 1.219, 0.1879),
    link_radii=(0.06, 0.055, 0.045, 0.04, 0.04, 0.035),
    torque_limits=(150.0, 150.0, 150.0, 28.0, 28.0, 28.0),
)

UR3 = URParams(
    name="ur3",
    d=(0.1519, 0.0, 0.0, 0.11235, 0.08535, 0.0819),
    a=(0.0, -0.24365, -0.21325, 0.0, 0.0, 0.0),
    alpha=_ALPHA,
    masses=(2.0, 3.42, 1.26, 0.8, 0.8, 0.35),
    link_radii=(0.045, 0.045, 0.038, 0.032, 0.032, 0.03),
    torque_limits=(56.0, 56.0, 28.0, 12.0, 12.0, 12.0),
)

ROBOTS = {"ur5": UR5, "ur3": UR3}


def robot_params(name: str) -> URParams:
    """UR parameters by name ('ur5' or 'ur3')."""
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; expected one of {sorted(ROBOTS)}") from None


def dh_transform(d: float, a: float, alpha: float, q: float) -> np.ndarray:
    """Rz(q) Tz(d) Tx(a) Rx(alpha) as a 4x4 matrix."""
    cq, sq, ca, sa = math.cos(q), math.sin(q), math.cos(alpha), math.sin(alpha)
    return np.array([[cq, -sq * ca, sq * sa, a * cq],
                     [sq, cq * ca, -cq * sa, a * sq],
                     [0.0, sa, ca, d],
                     [0.0, 0.0, 0.0, 1.0]])


def forward_kinematics(params: URParams, q) -> list[np.ndarray]:
    """Base -> link-frame transforms [T_01, T_02, ..., T_06] for joint angles q (6,); T_06 is the flange."""
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (6,) or not np.all(np.isfinite(q)):
        raise ValueError(f"joint angles must be 6 finite numbers, got {q!r}")
    frames, t = [], np.eye(4)
    for i in range(6):
        t = t @ dh_transform(params.d[i], params.a[i], params.alpha[i], q[i])
        frames.append(t)
    return frames


def flange_pose(params: URParams, q) -> np.ndarray:
    """Base -> tool0 (flange) 4x4 transform."""
    return forward_kinematics(params, q)[-1]
