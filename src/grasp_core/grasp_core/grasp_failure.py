"""Why a grasp failed, shared by every backend (the MuJoCo world, the sim node, the MoveIt backend) and the logs.

The values are grasp_interfaces/srv/ExecuteGrasp's REASON_* constants (tests/test_interfaces_dds.py checks that
they agree), so a reason crosses the service and GraspExperience.failure_reason as a plain integer.
"""
from __future__ import annotations

from enum import IntEnum


class GraspFailure(IntEnum):
    """Failure reasons; the values are ExecuteGrasp.srv's REASON_* constants."""

    NONE = 0
    NOTHING_GRASPED = 1   # the jaw closed fully: nothing between the fingers
    UNREACHABLE = 2       # the arm cannot get the jaw there (IK's best is centimetres away; no motion plan)
    IK_FAILURE = 3        # IK did not converge to the required accuracy
    TABLE_COLLISION = 4   # the gripper hit the table on the way down
    INVALID_TARGET = 5    # NaN/inf, or outside the workspace: nothing was executed
    DROPPED = 6           # the jaw closed on something that was not held through the lift
