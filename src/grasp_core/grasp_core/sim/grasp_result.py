"""Outcome of one simulated grasp primitive, mirroring grasp_interfaces/srv/ExecuteGrasp (ROS-free).

The failure reasons live in grasp_core.grasp_failure (the real backend uses them too); `GraspFailure` is
importable from here as well.
"""
from __future__ import annotations

from dataclasses import dataclass

from grasp_core.grasp_failure import GraspFailure

__all__ = ["GraspFailure", "GraspPhysics", "GraspResult"]


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


# What counts as an exploding contact (a solver artefact, not physics): an object faster than a thrown ball, a
# jaw forced open past its stroke while commanded shut, an object thrown across the room, or NaN.
EXPLODING_SPEED = 5.0          # m/s
EXPLODING_JAW_OPENING = 0.13   # m (the RG2 stroke is 0.11)
EXPLODING_THROW = 1.0          # m


@dataclass
class GraspPhysics:
    """Peaks over one grasp primitive, from the approach to the parked arm (GraspWorld.grasp_physics)."""

    max_object_speed: float = 0.0    # m/s, any object's linear speed
    max_jaw_opening: float = 0.0     # m
    max_displacement: float = 0.0    # m, farthest an object still in the scene ended from where it started
    nan: bool = False
    lifted_not_held: int = 0         # objects up in the air at the end of the lift but not between the fingers
    refinements: int = 0             # times the grasp was simulated again with a finer time step
    stuck_to_gripper: int = 0        # objects wedged in the gripper at the parking pose (they leave the scene)

    def exploded(self) -> str:
        """'' for a physically plausible grasp, else what gave the explosion away."""
        signs = [f"an object at {self.max_object_speed:.1f} m/s" if self.max_object_speed > EXPLODING_SPEED else "",
                 f"the jaw forced open to {self.max_jaw_opening * 1000:.0f} mm"
                 if self.max_jaw_opening > EXPLODING_JAW_OPENING else "",
                 f"an object thrown {self.max_displacement:.2f} m" if self.max_displacement > EXPLODING_THROW else "",
                 "NaN in the state" if self.nan else ""]
        return ", ".join(s for s in signs if s)
