"""A test double of the affordance node's /propose_grasp service, run as its own process.

The response is a pure function of the request (`expected_response`), so a client in another process can
check that every request and response field crossed DDS intact.
"""
import sys

import numpy as np


def expected_response(request, response):
    """Fill `response` from `request` (both grasp_interfaces ProposeGrasp types)."""
    hm = request.heightmap
    depth = np.frombuffer(bytes(hm.depth.data), dtype=np.float32) if hm.depth.data else np.zeros(1, np.float32)
    color = np.frombuffer(bytes(hm.color.data), dtype=np.uint8) if hm.color.data else np.zeros(1, np.uint8)
    response.success = request.epsilon < 0.5
    response.message = f"double: eps={request.epsilon:.3f} frame={hm.header.frame_id}"
    response.pose.header.frame_id = "base_link"
    response.pose.header.stamp = hm.header.stamp
    response.pose.pose.position.x = hm.x_min + 0.1
    response.pose.pose.position.y = hm.y_max - 0.1
    response.pose.pose.position.z = hm.z_min + float(depth.max())
    response.pose.pose.orientation.x = 0.6
    response.pose.pose.orientation.y = 0.8
    response.pose.pose.orientation.z = 0.0
    response.pose.pose.orientation.w = 0.0
    response.angle = float(hm.resolution) * 100.0
    response.q_value = float(depth.sum())
    response.center_px = [float(hm.depth.width), float(hm.depth.height)]
    response.rotation_index = int(color.sum()) % 16
    response.num_rotations = 16
    response.explored = request.epsilon > 0.25
    response.heightmap_stamp = hm.header.stamp
    response.model_version = 4242
    return response


def main() -> int:
    import rclpy
    from grasp_interfaces.srv import ProposeGrasp

    rclpy.init()
    node = rclpy.create_node("propose_grasp_double")
    node.create_service(ProposeGrasp, "/propose_grasp", lambda req, resp: expected_response(req, resp))
    print("READY", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
