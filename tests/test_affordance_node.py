"""affordance_node as its own process over DDS: no model yet, model announcements (good and corrupt), the
request's heightmap vs the latest one, bad input, and the RViz views. Tiny profile; one node for the module.
"""
import math
import os
import sys

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
import torch  # noqa: E402
from grasp_interfaces.msg import Heightmap, ModelVersion  # noqa: E402
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from grasp_bringup.process_graph import NodeSpec  # noqa: E402
from grasp_core import checkpoint  # noqa: E402
from grasp_core.grasp_pose import top_down_quaternion  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_ros.conversions import image_to_numpy, msg_to_heightmap  # noqa: E402
from grasp_ros.qos import LATEST_QOS, MODEL_QOS, SENSOR_QOS  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from graph_helpers import (TINY_WORKSPACE, RosClient, heightmap_msg, log_text, start_and_wait,  # noqa: E402
                           graph_in_test_domain, wait_until)

pytestmark = pytest.mark.ros
LABEL = "affordance_node"


def save_tiny_checkpoint(path, seed: int, version: int):
    torch.manual_seed(seed)
    qnet = get_profile("tiny").build_q_network()
    checkpoint.save_model(path, qnet.fcn, num_rotations=qnet.num_rotations, zoom=qnet.zoom,
                          back_rotation=qnet.back_rotation, profile="tiny", version=version)
    return path


def expected_greedy(path, hm_msg):
    qnet, _ = checkpoint.load_q_network(path)
    color, depth, _ = msg_to_heightmap(hm_msg)
    q = qnet.predict(color, depth)
    rotation, v, u = np.unravel_index(int(np.argmax(q)), q.shape)
    return int(rotation), int(u), int(v), float(q[rotation, v, u])


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("affordance")
    with graph_in_test_domain(tmp / "logs") as g:
        start_and_wait(g, NodeSpec("grasp_affordance", "affordance_node", params={"profile": "tiny"},
                                   label=LABEL), "affordance node ready", timeout=240.0)  # torch import, loaded CI
        client = RosClient("affordance_test_client")
        try:
            yield g, client, tmp
        finally:
            client.close()


@pytest.fixture(scope="module")
def endpoints(graph):
    g, client, tmp = graph
    node = client.node
    service = node.create_client(ProposeGrasp, "/propose_grasp")
    assert service.wait_for_service(timeout_sec=30.0)
    model_pub = node.create_publisher(ModelVersion, "/grasp/model", MODEL_QOS)
    return service, model_pub


def announce(model_pub, path, version, trunk="small_cnn", rotations=4):
    model_pub.publish(ModelVersion(version=version, path=str(path), trunk=trunk, num_rotations=rotations))


def test_no_model_yet_is_a_clear_refusal(graph, endpoints):
    g, client, _ = graph
    service, _ = endpoints
    response = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(1)))
    assert not response.success
    assert "no model loaded yet" in response.message
    assert g.node(LABEL).alive()


def test_announced_model_is_loaded_and_greedy_grasp_matches_the_network(graph, endpoints):
    g, client, tmp = graph
    service, model_pub = endpoints
    path = save_tiny_checkpoint(tmp / "v3.safetensors", seed=3, version=3)
    announce(model_pub, path, 3)
    hm = heightmap_msg(seed=2, sec=321)

    def loaded():
        r = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=hm))
        return r if r.success and r.model_version == 3 else None
    response = wait_until(loaded, 30.0, 0.2, "model version 3 to be served")
    rotation, u, v, q = expected_greedy(path, hm)
    assert (response.rotation_index, response.num_rotations) == (rotation, 4)
    assert list(response.center_px) == [float(u), float(v)]
    assert response.q_value == pytest.approx(q, abs=1e-4)
    assert not response.explored
    assert response.angle == pytest.approx(rotation * 2 * math.pi / 4)
    # Pose in the heightmap's frame: the pixel's point at the surface height, jaw pointing down at `angle`.
    color, depth, ws = msg_to_heightmap(hm)
    expected = ws.pixel_to_point(u, v, float(depth[v, u]))
    p = response.pose.pose.position
    assert [p.x, p.y, p.z] == pytest.approx(expected.tolist(), abs=1e-9)
    o = response.pose.pose.orientation
    assert [o.x, o.y, o.z, o.w] == pytest.approx(list(top_down_quaternion(response.angle)), abs=1e-9)
    assert response.pose.header.frame_id == "world"
    assert response.heightmap_stamp.sec == 321 and response.pose.header.stamp.sec == 321
    assert TINY_WORKSPACE.contains(p.x, p.y)


def test_epsilon_one_explores(graph, endpoints):
    _, client, _ = graph
    service, _ = endpoints
    responses = [client.call(service, ProposeGrasp.Request(epsilon=1.0, heightmap=heightmap_msg(4)))
                 for _ in range(5)]
    assert all(r.success and r.explored for r in responses)
    assert len({(tuple(r.center_px), r.rotation_index) for r in responses}) > 1  # random, not the argmax


def test_latest_heightmap_is_used_when_the_request_has_none(graph, endpoints):
    _, client, _ = graph
    service, _ = endpoints
    pub = client.node.create_publisher(Heightmap, "/grasp/heightmap", LATEST_QOS)
    pub.publish(heightmap_msg(seed=5, frame="world", sec=777))  # the node's base_frame (another is refused)

    def served():
        r = client.call(service, ProposeGrasp.Request(epsilon=0.0))
        return r if r.success else None
    response = wait_until(served, 20.0, 0.2, "a proposal on the latest heightmap")
    assert response.heightmap_stamp.sec == 777
    assert response.pose.header.frame_id == "world"


def _bad(kind):
    hm = heightmap_msg(seed=6)
    if kind == "encoding":
        hm.depth.encoding = "16UC1"
        hm.depth.step = hm.depth.width * 2
        hm.depth.data = np.zeros((hm.depth.height, hm.depth.width), np.uint16).tobytes()
    elif kind == "size":
        hm.depth.height, hm.depth.width, hm.depth.step = 32, 32, 32 * 4
        hm.depth.data = np.zeros((32, 32), np.float32).tobytes()
    elif kind == "nan":
        depth = np.frombuffer(bytes(hm.depth.data), np.float32).copy()
        depth[10] = np.nan
        hm.depth.data = depth.tobytes()
    elif kind == "truncated":
        hm.color.data = bytes(hm.color.data)[:-7]
    elif kind == "frame":
        hm.header.frame_id = ""
    return hm


@pytest.mark.parametrize("kind, words", [("encoding", "encoding"), ("size", "differ in size"), ("nan", "NaN"),
                                         ("truncated", "bytes"), ("frame", "frame_id")])
def test_bad_heightmaps_get_a_clear_refusal_and_the_node_keeps_serving(graph, endpoints, kind, words):
    g, client, _ = graph
    service, _ = endpoints
    response = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=_bad(kind)))
    assert not response.success
    assert "bad heightmap" in response.message and words in response.message, response.message
    good = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(7)))
    assert good.success
    assert g.node(LABEL).alive()


def test_bad_epsilon_is_refused(graph, endpoints):
    _, client, _ = graph
    service, _ = endpoints
    response = client.call(service, ProposeGrasp.Request(epsilon=1.5, heightmap=heightmap_msg(8)))
    assert not response.success and "epsilon" in response.message


def test_corrupt_or_mismatched_checkpoint_keeps_the_old_model(graph, endpoints):
    g, client, tmp = graph
    service, model_pub = endpoints
    before = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(9)))
    assert before.success
    corrupt = tmp / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00\x01 definitely not safetensors" * 10)
    announce(model_pub, corrupt, before.model_version + 1)
    wait_until(lambda: f"cannot load checkpoint {corrupt}" in log_text(g, LABEL), 20.0, what="the load error")
    # A readable file whose network differs from the announcement is refused too.
    other = save_tiny_checkpoint(tmp / "other.safetensors", seed=4, version=9)
    announce(model_pub, other, 9, rotations=16)
    wait_until(lambda: "announced 16 rotations" in log_text(g, LABEL), 20.0, what="the mismatch error")
    after = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(9)))
    assert after.success and after.model_version == before.model_version
    assert (after.rotation_index, list(after.center_px)) == (before.rotation_index, list(before.center_px))


def test_bad_metadata_or_a_nan_model_never_stops_the_node(graph, endpoints):
    """Issue 11, defects 2 and 3, over DDS: a record with the wrong types used to kill the process (exit 1), and a
    NaN model used to be swapped in (every request refused after it)."""
    import json

    from safetensors.torch import save_file
    g, client, tmp = graph
    service, model_pub = endpoints
    before = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(11)))
    assert before.success
    bad = save_tiny_checkpoint(tmp / "sixteen.safetensors", seed=6, version=40)
    state, record = checkpoint.load_model(bad)
    record["num_rotations"] = "sixteen"
    save_file(state, str(bad), metadata={checkpoint._HEADER_KEY: json.dumps(record)})
    announce(model_pub, bad, 40, rotations=0)
    wait_until(lambda: "'num_rotations' must be an integer" in log_text(g, LABEL), 20.0, what="the metadata error")
    torch.manual_seed(7)
    qnet = get_profile("tiny").build_q_network()
    with torch.no_grad():
        next(qnet.fcn.parameters()).view(-1)[0] = float("nan")
    nan = checkpoint.save_model(tmp / "nan.safetensors", qnet.fcn, num_rotations=4, profile="tiny", version=41)
    announce(model_pub, nan, 41)
    wait_until(lambda: "model version 41 has NaN or inf" in log_text(g, LABEL), 20.0, what="the NaN refusal")
    assert g.node(LABEL).alive()
    after = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(11)))
    assert after.success and after.model_version == before.model_version, after.message


def test_views_are_published(graph, endpoints):
    _, client, _ = graph
    service, _ = endpoints
    got = {}
    node = client.node
    subs = [node.create_subscription(Image, "/grasp/affordance", lambda m: got.setdefault("image", m), SENSOR_QOS),
            node.create_subscription(MarkerArray, "/grasp/proposal_markers", lambda m: got.setdefault("markers", m),
                                     SENSOR_QOS),
            node.create_subscription(PointCloud2, "/grasp/affordance_cloud", lambda m: got.setdefault("cloud", m),
                                     SENSOR_QOS),
            node.create_subscription(Image, "/grasp/affordance_grid", lambda m: got.setdefault("grid", m), SENSOR_QOS)]
    hm = heightmap_msg(seed=10, sec=55)

    def all_views():
        client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=hm))
        return len(got) == 4
    wait_until(all_views, 20.0, 0.3, "image, markers, cloud and rotation grid")
    image = image_to_numpy(got["image"], ("rgb8",))
    assert image.shape == (64, 64, 3) and image.std() > 0
    grid = image_to_numpy(got["grid"], ("rgb8",))  # the tiny profile's 4 rotations, 2 x 2, 1-pixel gaps
    assert grid.shape == (2 * 65 + 1, 2 * 65 + 1, 3) and grid[1:65, 1:65].std() > 0
    assert got["image"].header.frame_id == "world"
    markers = got["markers"].markers
    assert len(markers) == 4 and all(m.header.frame_id == "world" for m in markers)
    fingers = [m for m in markers if m.type == m.CUBE]
    gap = math.dist((fingers[0].pose.position.x, fingers[0].pose.position.y),
                    (fingers[1].pose.position.x, fingers[1].pose.position.y))
    assert gap == pytest.approx(0.085 + 0.01, abs=1e-6)  # jaw width + one finger thickness
    cloud = got["cloud"]
    assert cloud.width * cloud.height == 64 * 64 and [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
    xyz = np.frombuffer(bytes(cloud.data), np.float32).reshape(-1, 4)[:, :3]
    assert xyz[:, 0].min() == pytest.approx(TINY_WORKSPACE.x_min, abs=1e-6)
    assert xyz[:, 2].max() > TINY_WORKSPACE.z_min + 0.01  # the blobs stand above the table
    for s in subs:
        node.destroy_subscription(s)


def test_model_path_set_live_loads_that_checkpoint_and_other_parameters_are_read_only(graph, endpoints):
    """What `ros2 param set /affordance_node model_path <file>` does, through the node's parameter service."""
    from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    g, client, tmp = graph
    service, _ = endpoints
    set_params = client.node.create_client(SetParameters, "/affordance_node/set_parameters")
    assert set_params.wait_for_service(timeout_sec=30.0)

    def set_string(name, value):
        request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value=value))])
        return client.call(set_params, request).results[0]

    corrupt = tmp / "live_corrupt.safetensors"
    corrupt.write_bytes(b"not a checkpoint" * 10)
    refused = set_string("model_path", str(corrupt))
    assert not refused.successful and "cannot load it" in refused.reason
    live = save_tiny_checkpoint(tmp / "live.safetensors", seed=7, version=42)
    result = set_string("model_path", str(live))
    assert result.successful, result.reason
    hm = heightmap_msg(11)
    response = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=hm))
    assert response.success and response.model_version == 42
    rotation, u, v, _ = expected_greedy(live, hm)
    assert (response.rotation_index, list(response.center_px)) == (rotation, [float(u), float(v)])
    read_only = set_string("profile", "paper")
    assert not read_only.successful and "read-only" in read_only.reason
