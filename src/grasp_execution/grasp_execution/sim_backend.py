"""The `sim` backend: grasps and resets through the grasp_sim node's services."""
from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from grasp_interfaces.srv import ExecuteGrasp, ResetScene

from grasp_execution.backend import GraspBackend, GraspOutcome, ResetOutcome
from grasp_execution.service_call import ServiceUnavailable, call_service


class SimServiceBackend(GraspBackend):
    """Clients of `sim/execute_grasp` and `sim/reset` (names relative to the executor's namespace)."""

    name = "sim"

    def __init__(self, node, execute_service: str = "sim/execute_grasp", reset_service: str = "sim/reset",
                 timeout: float = 60.0, wait_for_server: float = 10.0, reset_num_objects: int = 0,
                 reset_object_set: str = ""):
        self._execute = node.create_client(ExecuteGrasp, execute_service)
        self._reset = node.create_client(ResetScene, reset_service)
        self.timeout, self.wait_for_server = timeout, wait_for_server
        self.reset_num_objects, self.reset_object_set = int(reset_num_objects), reset_object_set
        self._node = node

    def execute_grasp(self, pose: PoseStamped, angle: float) -> GraspOutcome:
        request = ExecuteGrasp.Request(pose=pose, angle=float(angle))
        try:
            response = call_service(self._execute, request, self.timeout, self.wait_for_server)
        except (ServiceUnavailable, TimeoutError, RuntimeError) as e:
            return GraspOutcome.refused(str(e))
        if not response.success:
            return GraspOutcome(executed=False, grasp_success=False, failure_reason=int(response.failure_reason),
                                message=response.message, objects_remaining=int(response.objects_remaining))
        return GraspOutcome(executed=True, grasp_success=bool(response.grasp_success),
                            failure_reason=int(response.failure_reason), message=response.message,
                            objects_remaining=int(response.objects_remaining))

    def reset(self) -> ResetOutcome:
        request = ResetScene.Request(num_objects=self.reset_num_objects, object_set=self.reset_object_set, seed=-1)
        try:
            response = call_service(self._reset, request, self.timeout, self.wait_for_server)
        except (ServiceUnavailable, TimeoutError, RuntimeError) as e:
            return ResetOutcome(False, str(e))
        return ResetOutcome(bool(response.success), response.message, int(response.num_objects))

    def close(self) -> None:
        self._node.destroy_client(self._execute)
        self._node.destroy_client(self._reset)
