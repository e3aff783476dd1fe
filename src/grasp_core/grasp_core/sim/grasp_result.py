"""Outcome of one grasp primitive, mirroring grasp_interfaces/srv/ExecuteGrasp (ROS-free)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class GraspFailure(IntEnum):
    """Failure reasons; the values are ExecuteGrasp.srv's REASON_* constants."""

    NONE = 0
    NOTHING_GRASPED = 1   # the jaw closed fully: nothing between the fingers
    UNREACHABLE = 2       # the arm cannot get the jaw there (IK's best is centimetres away)
    IK_FAILURE = 3        # IK did not converge to the required accuracy
    TABLE_COLLISION = 4   # the gripper hit the table on the way down
    INVALID_TARGET = 5    # NaN/inf, or outside the workspace: nothing was executed
    DROPPED = 6           # the jaw closed on something that was not held through the lift


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
