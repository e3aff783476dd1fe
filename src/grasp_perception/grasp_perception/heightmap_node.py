"""heightmap_node: RealSense-style colour + aligned depth + CameraInfo -> grasp_interfaces/Heightmap.

Messages in (the realsense2_camera topics, names are parameters), grasp_core.heightmap.make_heightmap for the maths,
messages out: `grasp/heightmap` (LATEST_QOS, so a late affordance node gets the newest at once) and, for RViz,
`grasp/heightmap/color` (rgb8) and `grasp/heightmap/depth` (32FC1, metres above z_min).

The camera subscriptions use the sensor-data QoS (best effort) by default (`camera_qos`), so both best-effort
cameras (realsense2_camera with `*_qos:=SENSOR_DATA`, bag replays) and reliable ones (the default, grasp_sim) connect.
Best effort loses frames: a 640x480 frame (~1.5 MB) overflows Fast DDS's default transport buffers (a 512 KiB
shared-memory segment, ~208 KiB UDP socket buffers) whenever this process drains them late, and nothing resends
the fragments. Harmless at 30 Hz, fatal for a camera that sends one frame per action (grasp_sim: give it
`camera_qos:=reliable`, as config/ur5_sim.yaml does). No image goes silently: the ones the middleware reports lost
are logged and counted (`lost_in_transport`), so are images dropped without a partner of the other stream
(`unpaired`) and frames whose CameraInfo (small, so it gets through) came but whose images did not (`missing_images`:
once a newer frame's images came, or `MISSING_AFTER` s / max_age later).

Depth holes (0 / NaN / inf: a D435's stereo shadows, edges, specular patches) are no data: heightmap cells no valid
point reached are filled from the nearest observed cell (grasp_core.heightmap), never called table; the node logs
the share of holes in the image and in the heightmap every `hole_log_period` s (a warning above
`max_hole_fraction`), and drops a frame with no depth point in the workspace (`nothing_in_workspace`).

Colour and depth are paired by stamp (stamp_sync.StampPairer, `max_stamp_skew`). The camera pose is the
tf2 transform base_frame <- the images' frame when tf2_ros is importable and `use_tf` is true, else the fixed
pose of `calibration_file` (grasp_perception.calibration); the node logs which at start-up.

Bad input never stops the node: a frame with a wrong encoding, mismatched sizes, too few valid depth pixels
(NaN/inf/0), an unknown frame, no transform, or a stamp older than `max_age` is logged (at most once per
`drop_log_period` per reason) and dropped, and counted in `dropped` (reason -> count). Before the first CameraInfo
the newest frame waits for it (older ones are dropped as `no_camera_info`).
"""
from __future__ import annotations

import importlib.util
import time
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np
from grasp_core.heightmap import depth_image_from_16uc1, fill_unobserved, project_heightmap
from grasp_core.workspace import VPG_SIM_WORKSPACE, WorkspaceLimits
from grasp_ros.conversions import heightmap_to_msg, image_to_numpy, numpy_to_image, stamp_ns
from grasp_ros.node_main import spin_node
from grasp_ros.params import ParameterError, declare_config, in_range, parameter
from grasp_ros.qos import CAMERA_QOS_CHOICES, LATEST_QOS, SENSOR_QOS, camera_qos
from grasp_interfaces.msg import Heightmap
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from grasp_perception.calibration import CameraCalibration, load_calibration
from grasp_perception.stamp_sync import StampPairer

COLOR_ENCODINGS = ("rgb8", "bgr8")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")  # 16-bit: millimetres (RealSense); 32FC1: metres (REP 118)
MISSING_AFTER = 5.0  # s (or max_age if longer): a frame whose CameraInfo came and whose images have not is missing
SAME_FRAME_NS = 1_000_000  # a CameraInfo and a colour image this close in stamp are one frame (the same stamp)


class FrameRejected(ValueError):
    """A camera frame the node drops; `reason` is the counter it goes to."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def tf2_available() -> bool:
    return importlib.util.find_spec("tf2_ros") is not None


def transform_to_matrix(transform) -> np.ndarray:
    """geometry_msgs/Transform -> 4x4 (the pose of the child frame in the parent frame)."""
    t, q = transform.translation, transform.rotation
    return CameraCalibration("parent", "child", (t.x, t.y, t.z), (q.x, q.y, q.z, q.w)).matrix()


def depth_in_metres(depth_msg: Image) -> np.ndarray:
    """Aligned depth Image -> float32 metres, invalid pixels as 0 (16-bit) or NaN/inf/0 (32FC1)."""
    raw = image_to_numpy(depth_msg, DEPTH_ENCODINGS)
    return raw.astype(np.float32) if depth_msg.encoding == "32FC1" else depth_image_from_16uc1(raw)


@dataclass(frozen=True)
class HeightmapConfig:
    """The heightmap node's parameters; the workspace defaults are VPG's simulated one (grasp_core.workspace)."""

    color_topic: str = parameter("camera/camera/color/image_raw", "Colour image topic (rgb8 or bgr8), as "
                                 "realsense2_camera publishes it.")
    depth_topic: str = parameter("camera/camera/aligned_depth_to_color/image_raw", "Depth aligned to the colour "
                                 "image (16UC1 millimetres or 32FC1 metres).")
    camera_info_topic: str = parameter("camera/camera/color/camera_info", "CameraInfo of the colour camera "
                                       "(intrinsics K of the aligned images).")
    heightmap_topic: str = parameter("grasp/heightmap", "Heightmap output topic.")
    camera_qos: str = parameter("sensor_data", "QoS of the camera subscriptions: sensor_data (best effort: hears "
                                "best-effort and reliable cameras) or reliable.",
                                check=lambda v: v in CAMERA_QOS_CHOICES, requirement=" or ".join(CAMERA_QOS_CHOICES))
    publish_images: bool = parameter(True, "Also publish <heightmap_topic>/color and /depth Images for RViz.")
    x_min: float = parameter(float(VPG_SIM_WORKSPACE.x_min), "Workspace x lower limit in base_frame, metres.")
    x_max: float = parameter(float(VPG_SIM_WORKSPACE.x_max), "Workspace x upper limit in base_frame, metres.")
    y_min: float = parameter(float(VPG_SIM_WORKSPACE.y_min), "Workspace y lower limit in base_frame, metres.")
    y_max: float = parameter(float(VPG_SIM_WORKSPACE.y_max), "Workspace y upper limit in base_frame, metres.")
    z_min: float = parameter(float(VPG_SIM_WORKSPACE.z_min), "Workspace z lower limit in base_frame, metres (the "
                             "table surface or just below it).")
    z_max: float = parameter(float(VPG_SIM_WORKSPACE.z_max), "Workspace z upper limit in base_frame, metres.")
    resolution: float = parameter(float(VPG_SIM_WORKSPACE.resolution), "Heightmap resolution, metres/pixel.",
                                  check=in_range(1e-4, 0.1), requirement="0.0001 <= resolution <= 0.1")
    use_tf: bool = parameter(True, "Take the camera pose from tf2 (base_frame <- image frame) when tf2_ros is "
                             "importable; otherwise (or when false) from calibration_file.")
    calibration_file: str = parameter("", "Calibration YAML (base_frame, camera_frame, translation, rotation) used "
                                      "when tf2 is not.")
    base_frame: str = parameter("", "Workspace frame of the heightmap (robot base). Empty: the calibration file's.")
    max_stamp_skew: float = parameter(0.02, "Largest colour/depth stamp difference paired as one frame, seconds.",
                                      check=in_range(0.0, 1.0), requirement="0 <= max_stamp_skew <= 1")
    queue_size: int = parameter(10, "Messages kept per stream while waiting for a partner.",
                                check=in_range(1, 1000), requirement="1 <= queue_size <= 1000")
    max_age: float = parameter(1.0, "Drop frames whose stamp is older than this many seconds (0: never).",
                               check=in_range(0.0, 3600.0), requirement="0 <= max_age <= 3600")
    min_valid_depth_fraction: float = parameter(0.2, "Drop frames in which fewer depth pixels than this fraction "
                                                "are valid (finite and > 0).", check=in_range(0.0, 1.0),
                                                requirement="0 <= min_valid_depth_fraction <= 1")
    max_rate: float = parameter(0.0, "Most heightmaps per second (a 30 Hz camera need not give 30); 0: every "
                                "frame.", check=in_range(0.0, 1000.0), requirement="0 <= max_rate <= 1000")
    drop_log_period: float = parameter(5.0, "Log a dropped-frame reason at most once per this many seconds.",
                                       check=in_range(0.0, 3600.0), requirement="0 <= drop_log_period <= 3600")
    hole_log_period: float = parameter(60.0, "Log the fraction of depth holes and of unobserved heightmap cells at "
                                       "most once per this many seconds.", check=in_range(0.01, 86400.0),
                                       requirement="0.01 <= hole_log_period <= 86400")
    max_hole_fraction: float = parameter(0.2, "Warn (instead of logging at info) when more than this fraction of "
                                         "heightmap cells had no depth point and were filled.",
                                         check=in_range(0.0, 1.0), requirement="0 <= max_hole_fraction <= 1")


class HeightmapNode(Node):
    def __init__(self, **kwargs):
        super().__init__("heightmap_node", **kwargs)
        self.config = config = declare_config(self, HeightmapConfig)
        try:
            self.workspace = WorkspaceLimits(config.x_min, config.x_max, config.y_min, config.y_max, config.z_min,
                                             config.z_max, config.resolution)
        except ValueError as e:
            raise ParameterError(f"workspace parameters: {e}") from None
        self._setup_camera_pose()
        self.pairer = StampPairer(config.max_stamp_skew, config.queue_size)
        self.camera_info: CameraInfo | None = None
        self._waiting_for_info = None  # the newest pair that arrived before any CameraInfo
        self._announced: deque[int] = deque(maxlen=1000)  # CameraInfo stamps (ns) whose images have not come yet
        self._last_pair_ns = -1  # stamp of the newest colour/depth pair
        self.published = 0
        self.dropped: Counter[str] = Counter()
        self.last_drop: tuple[str, str] | None = None
        self._last_drop_log: dict[str, float] = {}
        self._last_publish = -float("inf")
        self._warned_distortion = False
        self.image_hole_fraction = self.cell_hole_fraction = float("nan")  # of the newest frame

        self.heightmap_pub = self.create_publisher(Heightmap, config.heightmap_topic, LATEST_QOS)
        if config.publish_images:
            self.color_pub = self.create_publisher(Image, config.heightmap_topic + "/color", SENSOR_QOS)
            self.depth_pub = self.create_publisher(Image, config.heightmap_topic + "/depth", SENSOR_QOS)
        cam_qos = camera_qos(config.camera_qos)
        for stream, topic in (("color", config.color_topic), ("depth", config.depth_topic)):
            self._subscribe_images(stream, topic, cam_qos)
        self.create_subscription(CameraInfo, config.camera_info_topic, self._on_camera_info, cam_qos)
        h, w = self.workspace.shape
        self.get_logger().info(
            f"making {w}x{h} heightmaps ({self.workspace.resolution * 1000:.1f} mm/px) of x [{self.workspace.x_min}, "
            f"{self.workspace.x_max}] y [{self.workspace.y_min}, {self.workspace.y_max}] z [{self.workspace.z_min}, "
            f"{self.workspace.z_max}] in '{self.base_frame}' from {self.resolve_topic_name(config.color_topic)} + "
            f"{self.resolve_topic_name(config.depth_topic)} -> {self.resolve_topic_name(config.heightmap_topic)}")

    # ------------------------------------------------------------------------------------------------ set-up
    def _setup_camera_pose(self) -> None:
        config = self.config
        self.calibration: CameraCalibration | None = None
        self._tf_buffer = None
        if config.use_tf and tf2_available():
            if not config.base_frame:
                raise ParameterError("use_tf is true: set base_frame (the frame the workspace limits are in)")
            import tf2_ros  # noqa: PLC0415 - only on a full ROS 2 install
            self._tf_buffer = tf2_ros.Buffer()
            # The listener's /tf subscriptions run in this node's executor; lookups never wait (see _camera_pose).
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)
            self.base_frame = config.base_frame
            self.pose_source = "tf2"
            self.get_logger().info(f"camera pose from tf2: {self.base_frame} <- the images' frame (latest)")
            return
        why = "use_tf is false" if not config.use_tf else "tf2_ros is not importable"
        if not config.calibration_file:
            raise ParameterError(f"no camera pose: {why} and calibration_file is empty")
        try:
            self.calibration = load_calibration(config.calibration_file)
        except ValueError as e:
            raise ParameterError(str(e)) from None
        if config.base_frame and config.base_frame != self.calibration.base_frame:
            raise ParameterError(f"base_frame '{config.base_frame}' differs from the calibration file's "
                                 f"'{self.calibration.base_frame}' ({config.calibration_file})")
        self.base_frame = self.calibration.base_frame
        self._calibration_matrix = self.calibration.matrix()
        self.pose_source = "calibration"
        t = self.calibration.translation
        self.get_logger().info(f"camera pose from calibration file {config.calibration_file} ({why}): "
                               f"{self.calibration.camera_frame} at ({t[0]:.3f}, {t[1]:.3f}, {t[2]:.3f}) in "
                               f"{self.base_frame}")

    def _subscribe_images(self, stream: str, topic: str, qos) -> None:
        """One image stream, with the middleware's message-lost event when it has one (rmw_fastrtps does)."""
        def on_image(msg: Image) -> None:
            self._on_image(stream, msg)

        def on_lost(info) -> None:
            self._on_lost(stream, info)
        try:
            self.create_subscription(Image, topic, on_image, qos,
                                     event_callbacks=SubscriptionEventCallbacks(message_lost=on_lost))
        except UnsupportedEventTypeError:
            self.get_logger().info(f"this middleware does not report lost messages: images lost on "
                                   f"{self.resolve_topic_name(topic)} cannot be logged")
            self.create_subscription(Image, topic, on_image, qos)

    # ------------------------------------------------------------------------------------------------ input
    def _on_lost(self, stream: str, info) -> None:
        """The middleware lost `stream` images on the way (best effort: they are never resent)."""
        count = int(info.total_count_change)
        if count <= 0:
            return
        self._drop("lost_in_transport", f"{count} {stream} image(s) lost between the camera and this node, "
                                        f"{int(info.total_count)} on this stream so far{self._qos_hint()}", count)

    def _qos_hint(self) -> str:
        """What to do about lost images, when the subscription is what lets them be lost."""
        if self.config.camera_qos != "sensor_data":
            return ""
        return (" (best-effort subscription: nothing resends them; a camera that publishes reliably, e.g. grasp_sim, "
                "wants camera_qos:=reliable)")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        first = self.camera_info is None
        self.camera_info = msg
        self._announce(stamp_ns(msg.header.stamp))
        if first and self._waiting_for_info is not None:
            # The frame that arrived before the first CameraInfo (callback order is not publication order).
            pair, self._waiting_for_info = self._waiting_for_info, None
            self._handle(pair)

    # A camera sends CameraInfo with each frame, with the images' stamp. It is small, so it gets through where a
    # large image does not: a CameraInfo whose images never come is a frame lost on the way.
    def _announce(self, stamp: int) -> None:
        """A CameraInfo stamped `stamp`: expect its images (unless they came already or it repeats)."""
        if stamp <= 0:  # not stamped
            return
        patience = int(max(MISSING_AFTER, self.config.max_age) * 1e9)
        newest = max(self._last_pair_ns, self._announced[-1] if self._announced else -1)
        if stamp + patience < newest:  # time went back (a looped bag, a restarted camera): start over
            self._announced.clear()
            self._last_pair_ns = -1
        elif stamp <= self._last_pair_ns + SAME_FRAME_NS or (self._announced and stamp <= self._announced[-1]):
            return
        self._announced.append(stamp)
        self._report_missing(lambda s: s < stamp - patience, f"no images within {patience * 1e-9:.1f} s")

    def _images_came(self, stamp: int) -> None:
        """A colour/depth pair stamped `stamp` was made: frames announced before it that never came are missing."""
        self._last_pair_ns = max(self._last_pair_ns, stamp)
        self._report_missing(lambda s: s < stamp - SAME_FRAME_NS, "a newer frame's images came")
        while self._announced and self._announced[0] <= stamp + SAME_FRAME_NS:
            self._announced.popleft()

    def _report_missing(self, overdue, why: str) -> None:
        missing = []
        while self._announced and overdue(self._announced[0]):
            missing.append(self._announced.popleft())
        if not missing:
            return
        stamps = ", ".join(f"{s // 10**9}.{s % 10**9:09d}" for s in missing[:5]) + (", ..." if len(missing) > 5 else "")
        self._drop("missing_images", f"{len(missing)} frame(s) whose CameraInfo came never came as colour + depth "
                                     f"images ({why}), stamps {stamps}: lost on the way{self._qos_hint()}, or the "
                                     "camera stamps its CameraInfo differently from its images", len(missing))

    def _on_image(self, stream: str, msg: Image) -> None:
        unpaired = self.pairer.unpaired
        pair = self.pairer.add(stream, stamp_ns(msg.header.stamp), msg)
        if self.pairer.unpaired > unpaired:
            n = self.pairer.unpaired - unpaired
            self._drop("unpaired", f"{n} image(s) dropped without a partner of the other stream within "
                                   f"max_stamp_skew {self.config.max_stamp_skew} s (its partner was lost, the "
                                   f"queue of {self.config.queue_size} overflowed, or time went back); "
                                   f"waiting: {self.pairer.pending()}", n)
        if pair is None:
            return
        self._images_came(stamp_ns(pair.color.header.stamp))
        if self.camera_info is None:
            superseded, self._waiting_for_info = self._waiting_for_info, pair
            if superseded is not None:
                self._drop("no_camera_info", f"no CameraInfo received yet on "
                                             f"{self.resolve_topic_name(self.config.camera_info_topic)}")
            return
        self._handle(pair)

    def _handle(self, pair) -> None:
        try:
            self._process(pair.color, pair.depth)
        except FrameRejected as e:
            self._drop(e.reason, str(e))
        except Exception as e:  # noqa: BLE001 - a bad frame must never stop the node
            self._drop("internal", f"{type(e).__name__}: {e}")

    def _process(self, color_msg: Image, depth_msg: Image) -> None:
        config = self.config
        now = self.get_clock().now()
        if config.max_rate > 0 and time.monotonic() - self._last_publish < 1.0 / config.max_rate:
            return  # rate limit, not an error
        age = (now - Time.from_msg(color_msg.header.stamp)).nanoseconds * 1e-9
        if config.max_age > 0 and age > config.max_age:
            raise FrameRejected("stale", f"frame is {age:.2f} s old (max_age {config.max_age} s)")
        info = self.camera_info
        frame = color_msg.header.frame_id
        if depth_msg.header.frame_id != frame:
            raise FrameRejected("frame_mismatch", f"depth frame '{depth_msg.header.frame_id}' is not the colour "
                                                  f"frame '{frame}': is the depth aligned to colour?")
        try:
            color = image_to_numpy(color_msg, COLOR_ENCODINGS)
            depth = depth_in_metres(depth_msg)
        except ValueError as e:
            raise FrameRejected("bad_image", str(e)) from None
        if color.shape[:2] != depth.shape:
            raise FrameRejected("size_mismatch", f"colour {color.shape[1]}x{color.shape[0]} and depth "
                                                 f"{depth.shape[1]}x{depth.shape[0]} differ in size")
        if (info.height, info.width) != depth.shape:
            raise FrameRejected("size_mismatch", f"CameraInfo is {info.width}x{info.height} but the images are "
                                                 f"{depth.shape[1]}x{depth.shape[0]}")
        valid = np.isfinite(depth) & (depth > 0)
        fraction = float(valid.mean())
        if fraction < config.min_valid_depth_fraction:
            nan = int(np.count_nonzero(~np.isfinite(depth)))
            raise FrameRejected("invalid_depth", f"only {100 * fraction:.1f}% of depth pixels are valid "
                                                 f"({nan} NaN/inf; min_valid_depth_fraction "
                                                 f"{config.min_valid_depth_fraction})")
        if any(abs(d) > 1e-9 for d in info.d) and not self._warned_distortion:
            self._warned_distortion = True
            self.get_logger().warning(f"CameraInfo has distortion {list(info.d)}: the heightmap uses the pinhole "
                                      "K only (RealSense colour streams are close to undistorted)")
        pose = self._camera_pose(frame, color_msg.header)
        try:
            color_hm, depth_hm, observed = project_heightmap(
                color, depth, np.array(info.k, dtype=np.float64).reshape(3, 3), pose, self.workspace)
        except ValueError as e:
            raise FrameRejected("bad_camera", str(e)) from None
        self.image_hole_fraction, self.cell_hole_fraction = 1.0 - fraction, 1.0 - float(observed.mean())
        if not observed.any():
            raise FrameRejected("nothing_in_workspace", "no valid depth point falls in the workspace: is the camera "
                                                        "pose (calibration / tf) right, and the workspace in view?")
        color_hm, depth_hm = fill_unobserved(color_hm, depth_hm, observed)
        self._log_holes()
        header = Header(stamp=color_msg.header.stamp, frame_id=self.base_frame)
        self.heightmap_pub.publish(heightmap_to_msg(color_hm, depth_hm, self.workspace, header))
        if config.publish_images:
            self.color_pub.publish(numpy_to_image(color_hm, "rgb8", header))
            self.depth_pub.publish(numpy_to_image(depth_hm, "32FC1", header))
        self._last_publish = time.monotonic()
        self.published += 1
        if self.published == 1:
            self.get_logger().info(f"first heightmap published ({self.pose_source} camera pose, frame '{frame}', "
                                   f"{100 * fraction:.0f}% valid depth)")
        elif self.published % 500 == 0:
            self.get_logger().info(f"{self.published} heightmaps published; dropped frames: "
                                   f"{dict(self.dropped) or 'none'}")

    def _log_holes(self) -> None:
        """The share of depth holes (no return) in the image and of heightmap cells no depth point reached
        (filled from the nearest observed cell), throttled; a warning when many cells had to be filled."""
        message = (f"depth holes: {100 * self.image_hole_fraction:.1f}% of image pixels; "
                   f"{100 * self.cell_hole_fraction:.1f}% of heightmap cells unobserved, filled from the nearest "
                   "observed cell")
        if self.cell_hole_fraction > self.config.max_hole_fraction:
            self.get_logger().warning(f"{message} (more than max_hole_fraction {self.config.max_hole_fraction}: is "
                                      "the whole workspace in the camera's view and lit?)",
                                      throttle_duration_sec=self.config.hole_log_period)
        else:
            self.get_logger().info(message, throttle_duration_sec=self.config.hole_log_period)

    def _camera_pose(self, frame: str, header: Header) -> np.ndarray:
        if self.calibration is not None:
            if frame != self.calibration.camera_frame:
                raise FrameRejected("frame_mismatch", f"image frame '{frame}' is not the calibrated camera frame "
                                                      f"'{self.calibration.camera_frame}'")
            return self._calibration_matrix
        try:
            # The camera is fixed: the latest transform is the right one (and never waits).
            transform = self._tf_buffer.lookup_transform(self.base_frame, frame, Time())
        except Exception as e:  # noqa: BLE001 - tf2 raises several exception types
            raise FrameRejected("no_transform", f"no transform {self.base_frame} <- {frame}: "
                                                f"{type(e).__name__}: {e}") from None
        return transform_to_matrix(transform.transform)

    def _drop(self, reason: str, message: str, count: int = 1) -> None:
        self.dropped[reason] += count
        self.last_drop = (reason, message)
        now = time.monotonic()
        if now - self._last_drop_log.get(reason, -float("inf")) >= self.config.drop_log_period:
            self._last_drop_log[reason] = now
            self.get_logger().warning(f"dropped a camera frame ({reason}, {self.dropped[reason]} so far): {message}")


def main(args=None) -> int:
    return spin_node(HeightmapNode, "heightmap_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
