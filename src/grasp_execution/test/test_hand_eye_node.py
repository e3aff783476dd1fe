"""hand_eye_calibration end to end over DDS, up to the moveit seam: a stand-in arm that goes where it is sent (the
MoveItArm's interface), a stand-in camera node that publishes rendered rgb8 views of the checkerboard on that arm's
tool from the true camera pose, and CameraInfo. The written calibration must hold the true camera pose within 5 mm
and 1 degree; a result with a residual above the limit must not replace the file."""
import json
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_core.hand_eye import (CameraIntrinsics, Checkerboard, pose_difference, render_checkerboard,  # noqa: E402
                                 transform)
from grasp_perception.calibration import load_calibration  # noqa: E402
from grasp_ros.params import ParameterError  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from grasp_execution.hand_eye_node import HandEyeCalibrationNode  # noqa: E402

pytestmark = pytest.mark.ros

INTRINSICS = CameraIntrinsics(fx=615.0, fy=615.0, cx=320.0, cy=240.0)
BOARD = Checkerboard(4, 3, 0.02)  # the node's default board
CAMERA = transform(Rotation.from_quat([0.7071067811865476, -0.7071067811865476, 0.0, 0.0]).as_matrix(),
                   [-0.312, 0.0, 0.495])  # config/ur3_calibration.yaml's example
BOARD_IN_TOOL = transform(Rotation.from_euler("xyz", [180.0, 0.0, -8.0], degrees=True).as_matrix(),
                          [-0.01, 0.02, 0.11])


class StandInArm:
    """MoveItArm's interface: goes where it is sent (one pose unreachable), reports where it is."""

    def __init__(self):
        self.pose, self.moves, self.named = None, 0, []
        self.lock = threading.Lock()

    def move_to(self, pose):
        self.moves += 1
        if self.moves == 2:
            return False
        with self.lock:
            self.pose = pose
        return True

    def go_named(self, name):
        self.named.append(name)
        return True

    def tool_pose(self):
        with self.lock:
            return self.pose.copy()


class Gate:
    def __init__(self):
        self.waits = 0

    def wait(self, stop):
        self.waits += 1
        return False


def camera_stand_in(node, arm: StandInArm):
    image_pub = node.create_publisher(Image, "camera/camera/color/image_raw", 10)
    info_pub = node.create_publisher(CameraInfo, "camera/camera/color/camera_info", 10)
    rng = np.random.default_rng(7)

    def publish():
        with arm.lock:
            pose = arm.pose
        gray = (np.full((480, 640), 110, np.uint8) if pose is None else
                render_checkerboard(BOARD, INTRINSICS, np.linalg.inv(CAMERA) @ pose @ BOARD_IN_TOOL, rng=rng))
        stamp = node.get_clock().now().to_msg()
        image = Image(height=480, width=640, encoding="rgb8", step=640 * 3,
                      data=np.repeat(gray[..., None], 3, axis=2).tobytes())
        image.header.stamp, image.header.frame_id = stamp, "camera_color_optical_frame"
        info = CameraInfo(height=480, width=640, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=INTRINSICS.matrix().ravel().tolist())
        info.header = image.header
        image_pub.publish(image)
        info_pub.publish(info)

    return node.create_timer(0.05, publish)


def run_calibration(tmp_path, **parameters):
    arm, gate = StandInArm(), Gate()
    overrides = [Parameter("output", value=str(tmp_path / "ur3_calibration.yaml")),
                 Parameter("settle_time", value=0.3), Parameter("image_timeout", value=30.0)]
    overrides += [Parameter(k, value=v) for k, v in parameters.items()]
    node = HandEyeCalibrationNode(robot=(arm, gate), parameter_overrides=overrides)
    camera = rclpy.create_node("camera_stand_in")
    camera_stand_in(camera, arm)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(camera)
    try:
        node.start()
        deadline = time.monotonic() + 240.0
        while not node.done.is_set():
            assert time.monotonic() < deadline, "the calibration did not finish in 240 s"
            executor.spin_once(timeout_sec=0.05)
    finally:
        node.stop()
        executor.shutdown()
        node.destroy_node()
        camera.destroy_node()
    return node, arm, gate


def test_the_command_writes_the_camera_pose_it_measured(tmp_path):
    rclpy.init()
    try:
        node, arm, gate = run_calibration(tmp_path)
    finally:
        rclpy.shutdown()
    assert node.error is None and gate.waits == 1 and arm.named == ["home"]
    output = tmp_path / "ur3_calibration.yaml"
    assert node.written == output
    calibration = load_calibration(output)  # the format the heightmap node and the launch file read
    assert (calibration.base_frame, calibration.camera_frame) == ("base_link", "camera_color_optical_frame")
    distance, angle = pose_difference(calibration.matrix(), CAMERA)
    print(f"camera pose error {1000 * distance:.2f} mm, {angle:.3f} deg; corners "
          f"{node.result.corner_rms_mm:.2f} mm RMS, {node.result.reprojection_rms_px:.2f} px RMS, "
          f"{node.result.views} views")
    assert distance < 0.005 and angle < 1.0
    text = output.read_text()
    assert text.startswith("# Hand-eye calibration") and "mm RMS" in text and "observations.json" in text
    views = json.loads((tmp_path / "ur3_calibration.observations.json").read_text())
    assert len(views["views"]) == node.result.views >= 8 and views["intrinsics"]["fx"] == 615.0


def test_a_result_above_the_residual_limit_does_not_replace_the_file(tmp_path):
    (tmp_path / "ur3_calibration.yaml").write_text("# the calibration in use\n")
    rclpy.init()
    try:
        node, _, _ = run_calibration(tmp_path, max_corner_rms_mm=0.1)
    finally:
        rclpy.shutdown()
    assert (tmp_path / "ur3_calibration.yaml").read_text() == "# the calibration in use\n"
    assert node.written == tmp_path / "ur3_calibration.rejected.yaml" and node.written.is_file()
    assert "max_corner_rms_mm" in node.error and "not replaced" in node.error


def test_calibration_parameters_are_checked():
    rclpy.init()
    try:
        with pytest.raises(ParameterError, match="output"):
            HandEyeCalibrationNode(robot=(StandInArm(), None))
        with pytest.raises(ParameterError, match="one count even"):
            HandEyeCalibrationNode(robot=(StandInArm(), None), parameter_overrides=[
                Parameter("output", value="/tmp/x.yaml"), Parameter("board_columns", value=5)])
        with pytest.raises(ParameterError, match="grid_points"):
            HandEyeCalibrationNode(robot=(StandInArm(), None), parameter_overrides=[
                Parameter("output", value="/tmp/x.yaml"), Parameter("grid_points", value=[3, 0, 2])])
    finally:
        rclpy.shutdown()
