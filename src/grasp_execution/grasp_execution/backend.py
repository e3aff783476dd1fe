"""The seam between the executor loop and whatever moves the robot: GraspBackend, GraspOutcome, ResetOutcome.

Backends: `sim` (grasp_execution.sim_backend: the grasp_sim services) and `moveit` (grasp_execution.moveit_backend:
a UR3 through moveit_py and the UR tool I/O). A backend never raises for a bad grasp: it returns an outcome whose
`message` says what happened.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

from geometry_msgs.msg import PoseStamped
from grasp_core.grasp_failure import GraspFailure


@dataclass(frozen=True)
class GraspOutcome:
    """What one grasp attempt did.

    executed: the robot attempted the grasp (False: the request was refused or could not be sent, nothing moved,
    and the attempt is not an experience). failure_reason: a grasp_core.grasp_failure.GraspFailure (NONE on success).
    objects_remaining: objects left in the workspace when the backend can count them (simulation), else None.
    """

    executed: bool
    grasp_success: bool
    failure_reason: int
    message: str
    objects_remaining: int | None = None

    @classmethod
    def refused(cls, message: str) -> "GraspOutcome":
        return cls(executed=False, grasp_success=False, failure_reason=GraspFailure.INVALID_TARGET,
                   message=message)


@dataclass(frozen=True)
class ResetOutcome:
    """Whether the scene was refilled (a real cell needs a person: success False, message says so)."""

    success: bool
    message: str
    num_objects: int | None = None


class GraspBackend(ABC):
    """Executes top-down grasps for the executor. Methods block until done; called from one thread."""

    name: str = "backend"

    @abstractmethod
    def execute_grasp(self, pose: PoseStamped, angle: float) -> GraspOutcome:
        """Grasp at `pose` (position: jaw centre x, y and the surface height z, in the base frame) with the jaws
        closing along yaw `angle` (radians, about the base z axis)."""

    @abstractmethod
    def reset(self) -> ResetOutcome:
        """Refill / reset the scene (after it was emptied or after too many failures)."""

    def wait_until_ready(self, stop: threading.Event) -> bool:
        """Block until the robot can move or `stop` is set; True if it had to wait (the scene may have changed
        meanwhile). The executor asks before every attempt; a backend that is always ready returns False at once."""
        return False

    def close(self) -> None:
        """Release resources (clients, planners)."""
