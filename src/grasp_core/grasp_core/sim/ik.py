"""Damped-least-squares inverse kinematics on a MuJoCo model (mj_jacSite), from a fixed seed.

Numerical IK of a 6-joint arm has up to 8 solution branches; starting every solve from the same elbow-up seed
keeps the arm on one branch, so consecutive targets give nearby joint vectors and linear joint moves stay sane.
The solver works on its own MjData, never on the simulation's.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class IkResult:
    q: np.ndarray               # joint angles of the best iterate
    converged: bool
    position_error: float       # metres
    orientation_error: float    # radians
    iterations: int


class DlsIk:
    """Solves site pose targets for a set of hinge joints by damped least squares (Levenberg-Marquardt style)."""

    def __init__(self, model: mujoco.MjModel, site: str, joints: list[str], damping: float = 1e-3,
                 max_step: float = 0.3, position_tolerance: float = 1e-4, orientation_tolerance: float = 1e-3,
                 max_iterations: int = 200):
        self.model = model
        self.data = mujoco.MjData(model)
        self.site_id = model.site(site).id
        self.qpos_adr = np.array([model.joint(j).qposadr[0] for j in joints])
        self.dof_adr = np.array([model.joint(j).dofadr[0] for j in joints])
        self.lower = model.jnt_range[[model.joint(j).id for j in joints], 0]
        self.upper = model.jnt_range[[model.joint(j).id for j in joints], 1]
        self.damping, self.max_step = damping, max_step
        self.position_tolerance, self.orientation_tolerance = position_tolerance, orientation_tolerance
        self.max_iterations = max_iterations
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def site_pose(self, q) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics of the site: (position (3,), rotation (3, 3)) at joint angles q."""
        self.data.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site_id].copy(), self.data.site_xmat[self.site_id].reshape(3, 3).copy()

    def _error(self, target_pos: np.ndarray, target_quat: np.ndarray) -> np.ndarray:
        err = np.empty(6)
        err[:3] = target_pos - self.data.site_xpos[self.site_id]
        cur, cur_inv, diff = np.empty(4), np.empty(4), np.empty(4)
        mujoco.mju_mat2Quat(cur, self.data.site_xmat[self.site_id])
        mujoco.mju_negQuat(cur_inv, cur)
        mujoco.mju_mulQuat(diff, target_quat, cur_inv)
        mujoco.mju_quat2Vel(err[3:], diff, 1.0)  # rotation vector, world frame
        return err

    def solve(self, target_pos, target_rot, seed) -> IkResult:
        """Joint angles putting the site at `target_pos` (3,) with orientation `target_rot` (3, 3)."""
        target_pos = np.asarray(target_pos, dtype=np.float64)
        target_rot = np.asarray(target_rot, dtype=np.float64)
        q = np.array(seed, dtype=np.float64)
        if target_pos.shape != (3,) or target_rot.shape != (3, 3) or q.shape != self.qpos_adr.shape:
            raise ValueError("IK needs a position (3,), a rotation (3, 3) and a seed with one angle per joint")
        if not (np.all(np.isfinite(target_pos)) and np.all(np.isfinite(target_rot)) and np.all(np.isfinite(q))):
            raise ValueError(f"IK target or seed is not finite: {target_pos}, {target_rot.tolist()}, {q}")
        target_quat = np.empty(4)
        mujoco.mju_mat2Quat(target_quat, target_rot.reshape(-1))
        best = (np.inf, q.copy(), np.inf, np.inf)
        lam2 = self.damping ** 2
        for it in range(1, self.max_iterations + 1):
            self.data.qpos[self.qpos_adr] = q
            mujoco.mj_kinematics(self.model, self.data)
            err = self._error(target_pos, target_quat)
            pos_err, rot_err = float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:]))
            score = pos_err + 0.1 * rot_err
            if score < best[0]:
                best = (score, q.copy(), pos_err, rot_err)
            if pos_err < self.position_tolerance and rot_err < self.orientation_tolerance:
                return IkResult(q=q, converged=True, position_error=pos_err, orientation_error=rot_err,
                                iterations=it)
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site_id)
            jac = np.vstack([self._jacp[:, self.dof_adr], self._jacr[:, self.dof_adr]])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(6), err)
            norm = np.linalg.norm(dq)
            if norm > self.max_step:
                dq *= self.max_step / norm
            q = np.clip(q + dq, self.lower, self.upper)
        _, q_best, pos_err, rot_err = best
        return IkResult(q=q_best, converged=False, position_error=pos_err, orientation_error=rot_err,
                        iterations=self.max_iterations)
