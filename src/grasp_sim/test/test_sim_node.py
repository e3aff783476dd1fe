"""sim_node over real DDS: RealSense-like topics that the heightmap node turns into the world's heightmap, and
services that refuse bad requests with a message and keep serving."""
import math
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from geometry_msgs.msg import PoseStamped  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from grasp_interfaces.msg import Heightmap  # noqa: E402
from grasp_interfaces.srv import ExecuteGrasp, ResetScene  # noqa: E402
from grasp_ros.conversions import image_to_numpy, msg_to_heightmap, stamp_ns  # noqa: E402
from grasp_ros.qos import LATEST_QOS, SENSOR_QOS  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402

from grasp_perception.heightmap_node import HeightmapNode  # noqa: E402
from grasp_sim.sim_node import SimNode  # noqa: E402

pytestmark = pytest.mark.ros

CALIBRATION = Path(__file__).resolve().parents[3] / "config" / "ur5_sim_calibration.yaml"


@pytest.fixture
def graph():
    """sim_node + heightmap_node (as configured for the simulated UR5) + a client node, in one executor."""
    rclpy.init()
    sim = SimNode(parameter_overrides=[Parameter("num_objects", value=4), Parameter("seed", value=3),
                                       Parameter("publish_rate", value=2.0)])
    perception = HeightmapNode(parameter_overrides=[Parameter("use_tf", value=False),
                                                    Parameter("calibration_file", value=str(CALIBRATION)),
                                                    Parameter("drop_log_period", value=0.0)])
    client = rclpy.create_node("sim_test_client")
    got = {"heightmap": [], "color": [], "depth": [], "info": [], "joints": []}
    client.create_subscription(Heightmap, "grasp/heightmap", got["heightmap"].append, LATEST_QOS)
    client.create_subscription(Image, "camera/camera/color/image_raw", got["color"].append, SENSOR_QOS)
    client.create_subscription(Image, "camera/camera/aligned_depth_to_color/image_raw", got["depth"].append,
                               SENSOR_QOS)
    client.create_subscription(CameraInfo, "camera/camera/color/camera_info", got["info"].append, SENSOR_QOS)
    client.create_subscription(JointState, "joint_states", got["joints"].append, SENSOR_QOS)
    executor = rclpy.executors.SingleThreadedExecutor()
    for n in (sim, perception, client):
        executor.add_node(n)

    def spin_until(condition, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            executor.spin_once(timeout_sec=0.02)

    def call(srv_type, name, request):
        cli = client.create_client(srv_type, name)
        spin_until(lambda: cli.service_is_ready(), f"service {name}")
        future = cli.call_async(request)
        spin_until(future.done, f"the {name} response")
        return future.result()

    yield sim, perception, got, spin_until, call
    executor.shutdown()
    for n in (client, perception, sim):
        n.destroy_node()
    rclpy.shutdown()


def grasp_request(x, y, z=0.0, angle=0.0, frame="world"):
    pose = PoseStamped()
    pose.header.frame_id = frame
    pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = x, y, z
    pose.pose.orientation.x = 1.0
    return ExecuteGrasp.Request(pose=pose, angle=angle)


def test_sim_camera_topics_become_the_worlds_heightmap(graph):
    sim, perception, got, spin_until, call = graph
    spin_until(lambda: got["heightmap"] and got["color"] and got["depth"] and got["info"] and got["joints"],
               "camera topics and a heightmap")
    color, depth, info = got["color"][-1], got["depth"][-1], got["info"][-1]
    # realsense2_camera's encodings and frame.
    assert (color.encoding, depth.encoding) == ("rgb8", "16UC1")
    assert color.header.frame_id == depth.header.frame_id == info.header.frame_id == "camera_color_optical_frame"
    assert (info.width, info.height) == (color.width, color.height) == (depth.width, depth.height) == (640, 480)
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), sim.world.render().intrinsics.K)
    depth_mm = image_to_numpy(depth)
    assert 600 < np.median(depth_mm[depth_mm > 0]) < 700  # the table, ~0.66 m below the camera, in millimetres
    assert 0 < np.mean(depth_mm == 0) < 0.05  # a D435's holes (depth_noise defaults to true)
    assert got["joints"][-1].name[:3] == ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint"]

    hm_color, hm_depth, ws = msg_to_heightmap(got["heightmap"][-1])
    assert ws == VPG_SIM_WORKSPACE and got["heightmap"][-1].header.frame_id == "world"
    want_color, want_depth = sim.world.heightmap()
    assert np.mean(np.abs(hm_depth - want_depth) < 1e-4) > 0.999
    # The table is at ~0 and there are objects standing on it.
    table = hm_depth[hm_depth < 0.005]
    assert table.size > 0.8 * hm_depth.size and np.abs(np.median(table)) < 0.002
    assert np.count_nonzero(hm_depth > 0.02) > 300
    assert sum(perception.dropped.values()) == 0


def test_depth_noise_parameter_turns_the_d435_model_off():
    rclpy.init()
    try:
        sim = SimNode(parameter_overrides=[Parameter("num_objects", value=1), Parameter("depth_noise", value=False),
                                           Parameter("publish_rate", value=0.0)])
        try:
            assert sim.world.config.camera.depth_noise is None
            assert np.all(sim.world.render().depth_mm > 0)  # exact depth: no holes
        finally:
            sim.destroy_node()
    finally:
        rclpy.shutdown()


def test_execute_grasp_refuses_bad_requests_and_keeps_serving(graph):
    sim, _, got, spin_until, call = graph
    for request, fragment in [(grasp_request(math.nan, 0.0), "not finite"),
                              (grasp_request(-0.5, 0.0, angle=math.inf), "not finite"),
                              (grasp_request(0.3, 0.9), "outside the workspace"),
                              (grasp_request(-0.5, 0.0, frame="base_link"), "not the simulation's base frame"),
                              (grasp_request(-0.5, 0.0, z=5.0), "outside")]:
        response = call(ExecuteGrasp, "sim/execute_grasp", request)
        assert not response.success and fragment in response.message, response.message
        assert response.failure_reason == ExecuteGrasp.Response.REASON_INVALID_TARGET
        assert response.objects_remaining == 4
    assert sim.grasps == 0 and sim.refused == 5

    # A real grasp on the tallest cell still works after all that, and a fresh frame follows it.
    _, depth = sim.world.heightmap()
    v, u = np.unravel_index(np.argmax(depth), depth.shape)
    x, y, z = VPG_SIM_WORKSPACE.pixel_to_point(u, v, float(depth[v, u]))
    t_sent = sim.get_clock().now().nanoseconds
    response = call(ExecuteGrasp, "sim/execute_grasp", grasp_request(x, y, z))
    assert response.success and sim.grasps == 1
    assert response.objects_remaining == 4 - int(response.grasp_success)
    assert (response.failure_reason == 0) == response.grasp_success
    t_done = sim.get_clock().now().nanoseconds
    spin_until(lambda: got["color"] and stamp_ns(got["color"][-1].header.stamp) > t_done, "a post-grasp frame")
    assert t_done > t_sent

    # Reset: bad and good requests.
    bad = call(ResetScene, "sim/reset", ResetScene.Request(num_objects=999, seed=-1))
    assert not bad.success and "number of objects" in bad.message
    bad = call(ResetScene, "sim/reset", ResetScene.Request(object_set="kitchen", seed=-1))
    assert not bad.success and "kitchen" in bad.message
    good = call(ResetScene, "sim/reset", ResetScene.Request(num_objects=2, object_set="novel", seed=5))
    assert good.success and good.num_objects == 2 and len(sim.world.objects_in_workspace()) == 2
    assert sim.world.config.object_set == "novel"
