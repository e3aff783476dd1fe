"""The browser viewer (grasp_bringup.viewer) as its own process over DDS, opened in headless Chromium.

A simulated scene (MuJoCo) is published the way the graph publishes it: the robot's heightmap, the affordance views
of a proposal (its coarse key-point map as the Q maps of 16 rotations), the proposal as a service event, experiences
and learner updates. The page must show a frame: the screenshot has to hold the warm colours (yellow to red) of the
affordance maps, which the viewer's own interface never uses. Set GRASP_SCREENSHOT_DIR to keep the screenshot
(the README's docs/images/viewer.png is one).
"""
import base64
import math
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.msg import GraspExperience, Heightmap  # noqa: E402
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from service_msgs.msg import ServiceEventInfo  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from grasp_affordance.visualization import affordance_grid, affordance_image  # noqa: E402
from grasp_bringup.process_graph import NodeSpec  # noqa: E402
from grasp_bringup.viewer import viewer_url  # noqa: E402
from grasp_core.labels import affordance_label  # noqa: E402
from grasp_ros.conversions import heightmap_to_msg, numpy_to_image  # noqa: E402
from grasp_ros.qos import EXPERIENCE_QOS, LATEST_QOS, SENSOR_QOS, SERVICE_EVENT_QOS  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "grasp_annotation" / "test"))
from chromium_cdp import SKIP_MESSAGE, Chromium, find_chromium  # noqa: E402
from graph_helpers import RosClient, graph_in_test_domain, start_and_wait, wait_until  # noqa: E402

pytestmark = pytest.mark.ros
ROTATIONS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def simulated_scene():
    """Colour and depth heightmaps of a simulated 8-object scene and its key-point affordance map."""
    from grasp_core.sim.world import GraspWorld, SimConfig

    world = GraspWorld(SimConfig(robot="ur5", num_objects=8, seed=3))
    try:
        world.reset()
        color, depth = world.heightmap()
        points, sigmas, _ = world.ground_truth_keypoints()
        workspace = world.workspace
    finally:
        world.close()
    label = affordance_label(depth.shape, points, sigmas)
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w]
    # 16 "rotations": the key-point map, weighted a little differently per jaw angle (a stand-in for Q maps).
    q_maps = np.stack([label * (0.75 + 0.25 * np.cos(2 * math.pi * i / ROTATIONS + (u + v) / (h + w) * math.pi))
                       for i in range(ROTATIONS)]).astype(np.float32)
    return color, depth, workspace, q_maps


def warm_pixels(png: bytes) -> int:
    """Yellow-to-red pixels (JET's upper half) in a screenshot."""
    import cv2

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].astype(int)
    r, b = image[..., 0], image[..., 2]
    return int(((r > 180) & (b < 90) & (r - b > 120)).sum())


def publish_scene(client: RosClient):
    node = client.node
    color, depth, workspace, q_maps = simulated_scene()
    best = int(np.unravel_index(int(np.argmax(q_maps)), q_maps.shape)[0])
    rotation, v, u = np.unravel_index(int(np.argmax(q_maps)), q_maps.shape)
    angle = rotation * 2 * math.pi / ROTATIONS
    hm = heightmap_to_msg(color, depth, workspace)
    hm.header.frame_id = "world"
    overlay = affordance_image(color, q_maps[best], (int(u), int(v)), angle, 0.085 / workspace.resolution)
    grid = affordance_grid(q_maps, int(rotation))
    event = ProposeGrasp.Event()
    event.info.event_type = ServiceEventInfo.RESPONSE_SENT
    event.response = [ProposeGrasp.Response(success=True, angle=angle, q_value=float(q_maps.max()),
                                            center_px=[float(u), float(v)], rotation_index=int(rotation),
                                            num_rotations=ROTATIONS, model_version=3)]
    publishers = {
        "heightmap": node.create_publisher(Heightmap, "/robot1/grasp/heightmap", LATEST_QOS),
        "affordance": node.create_publisher(Image, "/grasp/affordance", SENSOR_QOS),
        "grid": node.create_publisher(Image, "/grasp/affordance_grid", SENSOR_QOS),
        "events": node.create_publisher(ProposeGrasp.Event, "/propose_grasp/_service_event", SERVICE_EVENT_QOS),
        "experience": node.create_publisher(GraspExperience, "/grasp/experience", EXPERIENCE_QOS),
        "updates": node.create_publisher(Float64MultiArray, "/grasp/learner/updates", 100),
    }
    wait_until(lambda: all(p.get_subscription_count() > 0 for p in publishers.values()), 60.0,
               what="the viewer's subscriptions")
    publishers["heightmap"].publish(hm)
    publishers["affordance"].publish(numpy_to_image(overlay, "rgb8", hm.header))
    publishers["grid"].publish(numpy_to_image(grid, "rgb8", hm.header))
    publishers["events"].publish(event)
    rng = np.random.default_rng(0)
    for i in range(60):  # a learning curve: success grows, epsilon and loss fall
        publishers["experience"].publish(GraspExperience(
            id=f"e{i}", attempt=i, reward=float(rng.random() < 0.15 + 0.6 * i / 60), epsilon=0.5 * 0.95 ** i))
        publishers["updates"].publish(Float64MultiArray(data=[i + 1.0, 0.4 * 0.96 ** i + 0.02 * rng.random(),
                                                              0.1, 0.5, 0.6]))
        time.sleep(0.02)
    return publishers


def test_viewer_page_shows_a_frame(tmp_path):
    executable = find_chromium()
    if executable is None:
        pytest.skip(SKIP_MESSAGE)
    web_port, grpc_port = free_port(), free_port()
    with graph_in_test_domain(tmp_path / "logs") as graph:
        start_and_wait(graph, NodeSpec("grasp_bringup", "viewer", params={
            "namespace": "/robot1", "web_port": web_port, "grpc_port": grpc_port, "window": 20}, label="viewer"),
            "viewer ready", timeout=300.0)
        client = RosClient("viewer_test_client")
        try:
            publish_scene(client)
            with Chromium(executable, width=1600, height=900, timeout=120.0) as browser:
                browser.navigate(viewer_url(web_port, grpc_port))
                deadline, warm, png = time.monotonic() + 180.0, 0, b""
                while time.monotonic() < deadline:  # the wasm viewer loads, connects, then draws
                    time.sleep(3.0)
                    png = base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"})["data"])
                    warm = warm_pixels(png)
                    if warm > 3000:
                        time.sleep(3.0)  # let the time series finish drawing for the picture
                        png = base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"})["data"])
                        break
                (tmp_path / "viewer.png").write_bytes(png)
                if os.environ.get("GRASP_SCREENSHOT_DIR"):
                    shutil.copy(tmp_path / "viewer.png", Path(os.environ["GRASP_SCREENSHOT_DIR"]) / "viewer.png")
                assert warm > 3000, f"no affordance map on the page (screenshot: {tmp_path / 'viewer.png'})"
        finally:
            client.close()
        log = (tmp_path / "logs" / "viewer.log").read_text()
        assert viewer_url(web_port, grpc_port) in log


def test_viewer_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with graph_in_test_domain(tmp_path / "logs") as graph:
            node = graph.start(NodeSpec("grasp_bringup", "viewer", params={"web_port": free_port(),
                                                                            "grpc_port": port}, label="viewer"))
            wait_until(lambda: not node.alive(), 120.0, what="the viewer to stop")
            assert node.process.returncode == 2
            assert f"port {port} is in use" in node.log_tail(20)
