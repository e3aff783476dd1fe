"""Outcome of one simulated grasp primitive, mirroring grasp_interfaces/srv/ExecuteGrasp (ROS-free).

The failure reasons live in grasp_core.grasp_failure (the real backend uses them too); `GraspFailure` is
importable from here as well.
"""
from __future__ import annotations

from dataclasses import dataclass

from grasp_core.grasp_failure import GraspFailure

__all__ = ["GraspFailure", "GraspResult"]


@dataclass(frozen=True)
class GraspResult:
    """What ExecuteGrasp returns. `executed` is the service's `success`: False only when the request was refused
    (INVALID_TARGET) and the arm did not move; an unreachable target counts as an executed, failed grasp."""

    executed: bool
    grasp_success: bool
    failure_reason: GraspFailure
    grasped_object: str           # '' when nothing was grasped
    jaw_opening: float            # metres, after the lift
    objects_remaining: int        # objects left in the workspace (after a reset, the new scene's count)
    message: str
    position: tuple[float, float, float] = (float("nan"),) * 3  # jaw centre actually targeted (world)
    angle: float = float("nan")   # closing-axis yaw used, radians
    scene_reset: bool = False     # the world reset itself after this grasp (empty, or no change for too long)
