"""The message contracts cross process boundaries over DDS intact (real rclpy, Fast DDS, loopback)."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_core.grasp_failure import GraspFailure  # noqa: E402
from grasp_interfaces.msg import GraspExperience, Heightmap, ModelVersion  # noqa: E402
from grasp_interfaces.srv import ExecuteGrasp, ProposeGrasp, ResetScene  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from propose_grasp_double import expected_response  # noqa: E402

pytestmark = pytest.mark.ros


def _heightmap(rng) -> Heightmap:
    hm = Heightmap()
    hm.header.frame_id = "world"
    hm.header.stamp.sec = 1234
    hm.header.stamp.nanosec = 5678
    h, w = 24, 32
    depth = rng.uniform(0, 0.2, size=(h, w)).astype(np.float32)
    color = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    hm.depth.height, hm.depth.width, hm.depth.encoding, hm.depth.step = h, w, "32FC1", w * 4
    hm.depth.data = depth.tobytes()
    hm.color.height, hm.color.width, hm.color.encoding, hm.color.step = h, w, "rgb8", w * 3
    hm.color.data = color.tobytes()
    hm.resolution = 0.002
    hm.x_min, hm.x_max, hm.y_min, hm.y_max, hm.z_min, hm.z_max = -0.724, -0.276, -0.224, 0.224, -0.0001, 0.4
    return hm


def _fields(msg):
    """All fields of a ROS message as plain Python values, recursively."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: _fields(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (bytes, bytearray)):
        return bytes(msg)
    if hasattr(msg, "tolist"):
        return msg.tolist()
    if isinstance(msg, (list, tuple)):
        return [_fields(m) for m in msg]
    return msg


@pytest.fixture
def double_server():
    proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "propose_grasp_double.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    line = proc.stdout.readline()
    if "READY" not in line:
        proc.kill()
        pytest.fail(f"service double did not start: {line!r} {proc.stderr.read()}")
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # a loaded machine: the double's exit is not what this test checks
        proc.kill()
        proc.wait(timeout=10)


def test_propose_grasp_round_trips_every_field_across_processes(double_server):
    rclpy.init()
    try:
        node = rclpy.create_node("propose_grasp_client")
        client = node.create_client(ProposeGrasp, "/propose_grasp")
        assert client.wait_for_service(timeout_sec=20.0), "no /propose_grasp server seen over DDS"
        rng = np.random.default_rng(7)
        for epsilon in (0.0, 0.3, 0.9):
            request = ProposeGrasp.Request(epsilon=epsilon, heightmap=_heightmap(rng))
            future = client.call_async(request)
            rclpy.spin_until_future_complete(node, future, timeout_sec=20.0)
            assert future.done(), "no response within 20 s"
            got = future.result()
            want = expected_response(request, ProposeGrasp.Response())
            assert _fields(got) == _fields(want)
            # The double's answer depends on every request field that matters, so a lost field would show.
            assert got.q_value > 0 and got.center_px.tolist() == [32.0, 24.0]
            assert got.success == (epsilon < 0.5)
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_experience_and_model_messages_hold_their_fields():
    rng = np.random.default_rng(3)
    exp = GraspExperience(id="1b4e28ba-2fa1-11d2-883f-0016d3cca427", source="/robot1", attempt=12,
                          heightmap=_heightmap(rng), rotation_index=5, num_rotations=16, pixel_x=10, pixel_y=20,
                          reward=1.0, terminal=True, model_version=3, epsilon=0.25, explored=True,
                          predicted_q=0.7, failure_reason=ExecuteGrasp.Response.REASON_NONE)
    assert exp.next_heightmap.depth.data.tolist() == [] and exp.terminal
    assert ModelVersion(version=2, path="/tmp/x.safetensors", trunk="resnet18", num_rotations=16).version == 2
    assert ResetScene.Request(num_objects=10, object_set="novel", seed=-1).object_set == "novel"
    codes = [ExecuteGrasp.Response.REASON_NONE, ExecuteGrasp.Response.REASON_NOTHING_GRASPED,
             ExecuteGrasp.Response.REASON_UNREACHABLE, ExecuteGrasp.Response.REASON_IK_FAILURE,
             ExecuteGrasp.Response.REASON_TABLE_COLLISION, ExecuteGrasp.Response.REASON_INVALID_TARGET,
             ExecuteGrasp.Response.REASON_DROPPED]
    assert codes == list(range(7))
    assert codes == [int(reason) for reason in GraspFailure]  # the ROS-free reasons are the service's codes


def test_experience_topic_delivers_every_message_reliably():
    """The replay topic's QoS (reliable, keep-all) delivers a burst of heightmap-sized messages, none lost."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
    rclpy.init()
    try:
        pub_node = rclpy.create_node("exp_pub")
        sub_node = rclpy.create_node("exp_sub")
        got = []
        sub_node.create_subscription(GraspExperience, "/grasp/experience", lambda m: got.append(m.attempt), qos)
        pub = pub_node.create_publisher(GraspExperience, "/grasp/experience", qos)
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(pub_node)
        executor.add_node(sub_node)
        deadline = time.monotonic() + 20
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert pub.get_subscription_count() == 1
        rng = np.random.default_rng(0)
        for i in range(50):
            pub.publish(GraspExperience(id=str(i), attempt=i, heightmap=_heightmap(rng)))
        while len(got) < 50 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert got == list(range(50))
    finally:
        rclpy.shutdown()
