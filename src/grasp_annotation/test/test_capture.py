"""Capture: heightmaps published over DDS end up as readable, unannotated samples of a key-point dataset."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from grasp_core.dataset import DatasetError, load_dataset  # noqa: E402
from grasp_core.workspace import WorkspaceLimits  # noqa: E402
from grasp_interfaces.msg import Heightmap  # noqa: E402
from grasp_ros.conversions import heightmap_to_msg  # noqa: E402
from grasp_ros.qos import LATEST_QOS  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from annotation_fixtures import WORKSPACE, make_dataset, scene  # noqa: E402

from grasp_annotation.capture import HeightmapCapture  # noqa: E402

pytestmark = pytest.mark.ros


def frame(k: int):
    """Frame k: the test scene with the first box raised by k mm, so every frame is different."""
    color, depth = scene(seed=k)
    depth[depth > 0] += 0.001 * k
    return color, depth


def test_capture_command_saves_new_frames_from_the_live_topic(tmp_path):
    calibration = tmp_path / "calib.yaml"
    calibration.write_text("camera_pose: {x: 0.5, y: 0.0, z: 0.6}\nsource: hand-eye test\n")
    out = tmp_path / "real"
    proc = subprocess.Popen(
        [sys.executable, "-m", "grasp_annotation.capture", "--dataset", str(out), "--topic", "/cap_test/heightmap",
         "--count", "3", "--every", "0.3", "--calibration", str(calibration), "--camera-info-topic", "",
         "--timeout", "15"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rclpy.init()
    published = {}
    try:
        node = rclpy.create_node("cap_test_publisher")
        pub = node.create_publisher(Heightmap, "/cap_test/heightmap", LATEST_QOS)
        k, deadline = 0, time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            color, depth = frame(k)
            msg = heightmap_to_msg(color, depth, WORKSPACE)
            msg.header.frame_id = "base_link"
            pub.publish(msg)
            published[k] = (color, depth)
            k += 1
            rclpy.spin_once(node, timeout_sec=0.05)
        node.destroy_node()
    finally:
        rclpy.shutdown()
        if proc.poll() is None:
            proc.kill()
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert stdout.count("saved sample") == 3

    dataset = load_dataset(out)
    assert [s.id for s in dataset.samples] == ["000000", "000001", "000002"]
    assert dataset.workspace == WORKSPACE
    assert dataset.camera["calibration"] == {"camera_pose": {"x": 0.5, "y": 0.0, "z": 0.6}, "source": "hand-eye test"}
    assert dataset.camera["source"] == "ROS topic /cap_test/heightmap" and dataset.camera["frame_id"] == "base_link"
    matched = []
    for sample in dataset.samples:
        assert sample.points.shape == (0, 2) and sample.sigmas.shape == (0,)  # unannotated
        hits = [k for k, (c, d) in published.items()
                if np.array_equal(c, sample.color) and np.array_equal(d, sample.depth)]
        assert len(hits) == 1, "each saved sample is exactly one published frame"
        matched.append(hits[0])
    assert matched == sorted(set(matched)), f"three different frames, in order: {matched}"
    assert matched[2] - matched[0] >= 2, "pictures 0.3 s apart at ~15 frames/s are frames apart"


def test_capture_node_service_saves_one_new_frame_per_call(tmp_path):
    make_dataset(tmp_path / "d", num_samples=2, annotated=True)  # captures go after the existing samples
    rclpy.init()
    try:
        capture = HeightmapCapture("capture_under_test", [
            Parameter("dataset", value=str(tmp_path / "d")), Parameter("topic", value="/svc_test/heightmap"),
            Parameter("camera_info_topic", value="")])
        helper = rclpy.create_node("svc_test_helper")
        pub = helper.create_publisher(Heightmap, "/svc_test/heightmap", LATEST_QOS)
        client = helper.create_client(Trigger, "/capture_under_test/capture")
        executor = SingleThreadedExecutor()
        executor.add_node(capture)
        executor.add_node(helper)
        assert client.wait_for_service(timeout_sec=10)

        def call() -> Trigger.Response:
            future = client.call_async(Trigger.Request())
            executor.spin_until_future_complete(future, timeout_sec=10)
            assert future.done()
            return future.result()

        def publish_and_wait(k: int) -> None:
            received = capture.received
            pub.publish(heightmap_to_msg(*frame(k), WORKSPACE))
            deadline = time.monotonic() + 10
            while capture.received == received and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            assert capture.received > received

        reply = call()
        assert not reply.success and "no new heightmap" in reply.message
        publish_and_wait(7)
        reply = call()
        assert reply.success and "000002" in reply.message
        reply = call()
        assert not reply.success, "the same frame is never saved twice"
        publish_and_wait(8)
        assert call().success
        # A heightmap of another workspace does not go into this dataset.
        other = WorkspaceLimits(0.0, 0.16, 0.0, 0.128, 0.0, 0.5, 0.002)
        received = capture.received
        pub.publish(heightmap_to_msg(*frame(9), other))
        while capture.received == received:
            executor.spin_once(timeout_sec=0.05)
        reply = call()
        assert not reply.success and "workspace" in reply.message and "differs" in reply.message
        capture.destroy_node()
        helper.destroy_node()
    finally:
        rclpy.shutdown()
    dataset = load_dataset(tmp_path / "d")
    assert [s.id for s in dataset.samples] == ["000000", "000001", "000002", "000003"]
    assert len(dataset.samples[0].points) == 2, "existing annotations are kept"
    assert np.array_equal(dataset.samples[2].depth, frame(7)[1])
    assert np.array_equal(dataset.samples[3].depth, frame(8)[1])


def test_capture_refuses_a_foreign_folder_before_taking_pictures(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "img.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset.json").write_text('{"format": "grasp-keypoints", "version": 1, "samp')
    rclpy.init()
    try:
        for folder, reason in (("photos", "not a grasp-keypoints dataset"), ("broken", "corrupt")):
            with pytest.raises(DatasetError, match=reason):
                HeightmapCapture("refusing", [Parameter("dataset", value=str(tmp_path / folder))])
    finally:
        rclpy.shutdown()
    result = subprocess.run([sys.executable, "-m", "grasp_annotation.capture", "--dataset", str(tmp_path / "photos"),
                             "--camera-info-topic", ""], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "capture: error:" in result.stderr and "not a grasp-keypoints dataset" in result.stderr
    assert "Traceback" not in result.stderr
