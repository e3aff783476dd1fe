"""heightmap_node over real DDS: a synthetic RealSense stream in, Heightmaps out; bad frames dropped, node keeps
going."""
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_core.workspace import WorkspaceLimits  # noqa: E402
from grasp_interfaces.msg import Heightmap  # noqa: E402
from grasp_ros.conversions import msg_to_heightmap, numpy_to_image  # noqa: E402
from grasp_ros.params import ParameterError  # noqa: E402
from grasp_ros.qos import LATEST_QOS, SENSOR_QOS  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from grasp_perception.calibration import CameraCalibration, save_calibration  # noqa: E402
from grasp_perception.heightmap_node import HeightmapNode  # noqa: E402

pytestmark = pytest.mark.ros

FRAME = "camera_color_optical_frame"
W, H, F = 160, 120, 150.0
K = np.array([[F, 0, (W - 1) / 2], [0, F, (H - 1) / 2], [0, 0, 1.0]])
WORKSPACE = WorkspaceLimits(-0.7, -0.3, -0.2, 0.2, -0.001, 0.3, 0.005)
CAMERA_HEIGHT = 0.6
BOX_X, BOX_Y, BOX_H = (-0.55, -0.45), (-0.05, 0.05), 0.05
# Looking straight down from above the workspace centre (image x along world -y, image y along world -x).
POSE = np.eye(4)
POSE[:3, :3] = [[0, -1, 0], [-1, 0, 0], [0, 0, -1]]
POSE[:3, 3] = [-0.5, 0.0, CAMERA_HEIGHT]


def synthetic_frame():
    """Exact z-depth (m) and colour of a grey table (z = 0) with a red 5 cm box, seen by the camera at POSE."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / F, (v - K[1, 2]) / F, np.ones_like(u)], axis=-1) @ POSE[:3, :3].T
    top = POSE[:3, 3] + (CAMERA_HEIGHT - BOX_H) * rays  # z-depth of the box top plane
    on_box = (top[..., 0] >= BOX_X[0]) & (top[..., 0] <= BOX_X[1]) & (top[..., 1] >= BOX_Y[0]) \
        & (top[..., 1] <= BOX_Y[1])
    depth = np.where(on_box, CAMERA_HEIGHT - BOX_H, CAMERA_HEIGHT).astype(np.float32)
    color = np.full((H, W, 3), 90, np.uint8)
    color[on_box] = (200, 20, 20)
    return color, depth


class Harness:
    """The node under test plus a 'camera' publisher and a heightmap subscriber, spun in this thread."""

    def __init__(self, calibration_file, camera_pub_qos=SENSOR_QOS, **overrides):
        params = {"calibration_file": str(calibration_file), "use_tf": False, "drop_log_period": 0.0,
                  "max_age": 1.0, "x_min": WORKSPACE.x_min, "x_max": WORKSPACE.x_max, "y_min": WORKSPACE.y_min,
                  "y_max": WORKSPACE.y_max, "z_min": WORKSPACE.z_min, "z_max": WORKSPACE.z_max,
                  "resolution": WORKSPACE.resolution, **overrides}
        self.node = HeightmapNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.io = rclpy.create_node("fake_realsense")
        self.color_pub = self.io.create_publisher(Image, "camera/camera/color/image_raw", camera_pub_qos)
        self.depth_pub = self.io.create_publisher(Image, "camera/camera/aligned_depth_to_color/image_raw",
                                                  camera_pub_qos)
        self.info_pub = self.io.create_publisher(CameraInfo, "camera/camera/color/camera_info", camera_pub_qos)
        self.heightmaps, self.images = [], []
        self.io.create_subscription(Heightmap, "grasp/heightmap", self.heightmaps.append, LATEST_QOS)
        self.io.create_subscription(Image, "grasp/heightmap/depth", self.images.append, SENSOR_QOS)
        self.executor = rclpy.executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.executor.add_node(self.io)
        self.spin_until(lambda: self.color_pub.get_subscription_count() > 0
                        and self.depth_pub.get_subscription_count() > 0
                        and self.info_pub.get_subscription_count() > 0, "discovery")

    def spin_until(self, condition, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.executor.spin_once(timeout_sec=0.02)

    def publish(self, color_msg, depth_msg, info=True):
        if info:
            self.info_pub.publish(CameraInfo(header=color_msg.header, width=W, height=H, k=K.reshape(-1).tolist(),
                                             d=[0.0] * 5, distortion_model="plumb_bob"))
            self.spin_until(lambda: self.node.camera_info is not None, "camera info")
        self.color_pub.publish(color_msg)
        self.depth_pub.publish(depth_msg)

    def expect_heightmap(self, color_msg, depth_msg, **kw):
        before = len(self.heightmaps)
        self.publish(color_msg, depth_msg, **kw)
        self.spin_until(lambda: len(self.heightmaps) > before, "a heightmap")
        return self.heightmaps[-1]

    def expect_drop(self, reason, color_msg, depth_msg, **kw):
        before = self.node.dropped[reason]
        self.publish(color_msg, depth_msg, **kw)
        self.spin_until(lambda: self.node.dropped[reason] > before, f"a '{reason}' drop")
        return self.node.last_drop[1]

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()


def messages(stamp, color=None, depth_mm=None, depth_m=None, frame=FRAME, color_encoding="rgb8"):
    header = Header(stamp=stamp, frame_id=frame)
    c, d = synthetic_frame()
    color_msg = numpy_to_image(c if color is None else color, color_encoding, header)
    if depth_m is not None:
        depth_msg = numpy_to_image(depth_m, "32FC1", header)
    else:
        depth_msg = numpy_to_image(np.rint(d * 1000).astype(np.uint16) if depth_mm is None else depth_mm,
                                   "16UC1", header)
    return color_msg, depth_msg


@pytest.fixture
def calibration_file(tmp_path):
    path = tmp_path / "calibration.yaml"
    save_calibration(CameraCalibration.from_matrix("world", FRAME, POSE), path)
    return path


@pytest.fixture
def harness(calibration_file):
    rclpy.init()
    h = Harness(calibration_file)
    yield h
    h.close()
    rclpy.shutdown()


def now(h):
    return h.node.get_clock().now().to_msg()


def test_heightmaps_from_a_synthetic_realsense_stream(harness):
    h = harness
    stamp = now(h)
    msg = h.expect_heightmap(*messages(stamp))
    color, depth, ws = msg_to_heightmap(msg)
    assert ws == WORKSPACE and msg.header.frame_id == "world" and msg.header.stamp == stamp
    # The box's cells stand 5 cm (+ the 1 mm below the table that z_min is) above z_min, the table ~0.
    xs = WORKSPACE.x_min + (np.arange(depth.shape[1]) + 0.5) * WORKSPACE.resolution
    ys = WORKSPACE.y_min + (np.arange(depth.shape[0]) + 0.5) * WORKSPACE.resolution
    inside = ((ys[:, None] > BOX_Y[0] + 0.005) & (ys[:, None] < BOX_Y[1] - 0.005)
              & (xs[None] > BOX_X[0] + 0.005) & (xs[None] < BOX_X[1] - 0.005))
    outside = ~((ys[:, None] > BOX_Y[0] - 0.01) & (ys[:, None] < BOX_Y[1] + 0.01)
                & (xs[None] > BOX_X[0] - 0.01) & (xs[None] < BOX_X[1] + 0.01))
    np.testing.assert_allclose(depth[inside], BOX_H + 0.001, atol=1e-3)
    seen_table = outside & (depth > 0)
    assert seen_table.mean() > 0.5 * outside.mean()  # most of the table is in view
    np.testing.assert_allclose(depth[seen_table], 0.001, atol=1e-3)
    assert (color[inside] == (200, 20, 20)).all()
    h.spin_until(lambda: len(h.images) > 0, "the RViz depth image")
    assert h.images[-1].encoding == "32FC1" and h.images[-1].header.frame_id == "world"

    # 32FC1 metres with some NaN (REP 118: no return) is as good as 16UC1 millimetres.
    _, d = synthetic_frame()
    d[::7, ::5] = np.nan
    box32 = msg_to_heightmap(h.expect_heightmap(*messages(now(h), depth_m=d)))[1][inside]
    np.testing.assert_allclose(box32, BOX_H + 0.001, atol=1e-3)
    assert h.node.published == 2 and sum(h.node.dropped.values()) == 0

    # Holes (a D435's 0 = no return) are no data: box cells no depth point reached take the box's height from
    # their observed neighbours, never 0; the node keeps the hole fractions it logs.
    c, d = synthetic_frame()
    depth_mm = np.rint(d * 1000).astype(np.uint16)
    depth_mm[50:70, 70:90] = 0          # a hole in the middle of the box top
    depth_mm[::3, ::2] = 0              # and a sixth of all pixels
    box = msg_to_heightmap(h.expect_heightmap(*messages(now(h), color=c, depth_mm=depth_mm)))[1][inside]
    np.testing.assert_allclose(box, BOX_H + 0.001, atol=1e-3)
    assert abs(h.node.image_hole_fraction - np.mean(depth_mm == 0)) < 1e-9
    assert 0.01 < h.node.cell_hole_fraction < 0.5


def test_a_best_effort_camera_is_heard(calibration_file):
    """realsense2_camera with `*_qos:=SENSOR_DATA` (and many bag replays) publish best effort: the default
    camera_qos (sensor_data) subscribes best effort, which hears best-effort and reliable publishers alike."""
    rclpy.init()
    h = Harness(calibration_file, camera_pub_qos=qos_profile_sensor_data)  # waits until every stream matched
    try:
        for info in h.io.get_subscriptions_info_by_topic("/camera/camera/color/image_raw"):
            assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        msg = h.expect_heightmap(*messages(now(h)))
        assert msg_to_heightmap(msg)[1].max() > 0.04
    finally:
        h.close()
        rclpy.shutdown()


def test_camera_qos_parameter(calibration_file):
    """camera_qos=reliable subscribes reliable (no best-effort camera would match); anything else is refused."""
    rclpy.init()
    try:
        h = Harness(calibration_file, camera_qos="reliable")
        try:
            infos = h.io.get_subscriptions_info_by_topic("/camera/camera/aligned_depth_to_color/image_raw")
            assert infos and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        finally:
            h.close()
        with pytest.raises(ParameterError, match="sensor_data or reliable"):
            HeightmapNode(parameter_overrides=[Parameter("calibration_file", value=str(calibration_file)),
                                               Parameter("use_tf", value=False),
                                               Parameter("camera_qos", value="best_effort")])
    finally:
        rclpy.shutdown()


def test_bad_frames_are_logged_dropped_and_the_node_keeps_going(harness):
    h = harness
    # Before the intrinsics are known the newest frame waits for them; an older waiting one is dropped.
    h.publish(*messages(now(h)), info=False)
    assert "no CameraInfo" in h.expect_drop("no_camera_info", *messages(now(h)), info=False)
    before = len(h.heightmaps)
    h.info_pub.publish(CameraInfo(header=Header(frame_id=FRAME), width=W, height=H, k=K.reshape(-1).tolist()))
    h.spin_until(lambda: len(h.heightmaps) > before, "the waiting frame's heightmap")
    assert "encoding 'mono8'" in h.expect_drop(
        "bad_image", *messages(now(h), color=np.zeros((H, W), np.uint8), color_encoding="mono8"))
    assert "differ in size" in h.expect_drop(
        "size_mismatch", *messages(now(h), depth_mm=np.full((H // 2, W // 2), 600, np.uint16)))
    assert "NaN" in h.expect_drop("invalid_depth", *messages(now(h), depth_m=np.full((H, W), np.nan, np.float32)))
    beyond = np.full((H, W), 0.2, np.float32)  # every point above z_max: nothing falls in the workspace
    assert "workspace" in h.expect_drop("nothing_in_workspace", *messages(now(h), depth_m=beyond))
    old = h.node.get_clock().now() - rclpy.duration.Duration(seconds=5.0)
    assert "max_age" in h.expect_drop("stale", *messages(old.to_msg()))
    assert "calibrated camera frame" in h.expect_drop("frame_mismatch", *messages(now(h), frame="camera_link"))
    color_msg, depth_msg = messages(now(h))
    depth_msg.header = Header(stamp=color_msg.header.stamp, frame_id="camera_depth_optical_frame")
    assert "aligned" in h.expect_drop("frame_mismatch", color_msg, depth_msg)
    assert h.node.published == 1
    # ... and the next good frame still becomes a heightmap.
    msg = h.expect_heightmap(*messages(now(h)))
    assert msg_to_heightmap(msg)[1].max() > 0.04 and h.node.published == 2
    assert sum(h.node.dropped.values()) == 8, h.node.dropped



def test_images_without_a_partner_and_images_lost_on_the_way_are_logged_and_counted(harness):
    """No camera image disappears silently: one dropped because its partner never came is an `unpaired` drop, a
    frame whose CameraInfo came but whose images did not is `missing_images`, and images the middleware reports lost
    (RMW message-lost event) are `lost_in_transport`; each is counted and logged."""
    from rclpy.event_handler import QoSSubscriptionEventType  # noqa: PLC0415

    h = harness
    base = h.node.get_clock().now().nanoseconds

    def stamp(tenths):  # explicit stamps 0.1 s apart: frames, not a fast loop's neighbouring clock readings
        return rclpy.time.Time(nanoseconds=base + tenths * 100_000_000).to_msg()

    def info(at):
        h.info_pub.publish(CameraInfo(header=Header(stamp=at, frame_id=FRAME), width=W, height=H,
                                      k=K.reshape(-1).tolist()))
        h.spin_until(lambda: h.node.camera_info is not None and h.node.camera_info.header.stamp == at, "CameraInfo")

    # A colour image whose depth never came: dropped as unpaired once a newer pair is made, and its frame (its
    # CameraInfo came) is missing.
    lonely_color, _ = messages(stamp(1))
    info(stamp(1))
    h.color_pub.publish(lonely_color)
    h.spin_until(lambda: h.node.pairer.pending()["color"] == 1, "the colour image to wait for its depth")
    assert h.node.dropped["missing_images"] == 0  # not yet: its depth may still come
    msg = h.expect_heightmap(*messages(stamp(2)))
    assert msg_to_heightmap(msg)[1].max() > 0.04
    assert h.node.dropped["unpaired"] == 1 and h.node.dropped["missing_images"] == 1

    # A frame whose CameraInfo came and neither image did (both lost on the way): missing, once a newer frame's
    # images come, with its stamp in the log.
    info(stamp(3))
    h.expect_heightmap(*messages(stamp(4)))
    assert h.node.dropped["missing_images"] == 2 and h.node.dropped["unpaired"] == 1
    reason, message = h.node.last_drop
    assert reason == "missing_images" and f"stamps {stamp(3).sec}.{stamp(3).nanosec:09d}" in message

    # Every image subscription listens for the middleware's lost-message event...
    for sub in h.node.subscriptions:
        if sub.msg_type is Image and sub.topic_name.startswith("/camera/"):
            assert QoSSubscriptionEventType.RCL_SUBSCRIPTION_MESSAGE_LOST in [e.event_type for e in sub.event_handlers]
    # ... and counts and logs what it reports (over DDS: tests/test_camera_delivery.py).

    class Lost:
        total_count, total_count_change = 3, 3
    h.node._on_lost("depth", Lost())
    assert h.node.dropped["lost_in_transport"] == 3
    reason, message = h.node.last_drop
    assert reason == "lost_in_transport" and "3 depth image(s) lost" in message and "camera_qos:=reliable" in message

def test_bad_parameters_stop_the_node_with_a_clear_message(calibration_file, tmp_path):
    rclpy.init()
    try:
        with pytest.raises(ParameterError, match="calibration_file is empty"):
            HeightmapNode(parameter_overrides=[Parameter("use_tf", value=False)])
        with pytest.raises(ParameterError, match="differs from the calibration"):
            HeightmapNode(parameter_overrides=[Parameter("use_tf", value=False), Parameter("base_frame", value="x"),
                                               Parameter("calibration_file", value=str(calibration_file))])
        with pytest.raises(ParameterError, match="min < max"):
            HeightmapNode(parameter_overrides=[Parameter("calibration_file", value=str(calibration_file)),
                                               Parameter("x_min", value=1.0)])
        bad = tmp_path / "bad.yaml"
        bad.write_text("base_frame: world\n")
        with pytest.raises(ParameterError, match="missing"):
            HeightmapNode(parameter_overrides=[Parameter("calibration_file", value=str(bad))])
    finally:
        rclpy.shutdown()


class FakeTfBuffer:
    """Stands in for tf2_ros.Buffer (not installable here): the calibrated pose, or a lookup error."""

    def __init__(self, pose=None):
        self.pose, self.lookups = pose, []

    def lookup_transform(self, target, source, when):
        from geometry_msgs.msg import TransformStamped
        from scipy.spatial.transform import Rotation

        self.lookups.append((target, source, when.nanoseconds))
        if self.pose is None:
            raise RuntimeError(f'"{target}" passed to lookupTransform argument target_frame does not exist')
        t = TransformStamped()
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = self.pose[:3, 3]
        q = Rotation.from_matrix(self.pose[:3, :3]).as_quat()
        t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w = q
        return t


def test_camera_pose_from_tf2_lookups(harness):
    h = harness
    want = msg_to_heightmap(h.expect_heightmap(*messages(now(h))))[1]
    # Switch the node to its tf2 path, as on a real install (tf2_ros importable, use_tf true).
    h.node.calibration, h.node._tf_buffer, h.node.pose_source = None, FakeTfBuffer(POSE), "tf2"
    got = msg_to_heightmap(h.expect_heightmap(*messages(now(h))))[1]
    np.testing.assert_allclose(got, want, atol=1e-6)
    # world <- the images' frame, latest transform (the camera is fixed).
    assert h.node._tf_buffer.lookups == [("world", FRAME, 0)]
    h.node._tf_buffer = FakeTfBuffer(None)
    assert "no transform world <- camera_color_optical_frame" in h.expect_drop("no_transform", *messages(now(h)))
