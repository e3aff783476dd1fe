"""hand_eye_calibration: measure where the camera is, with the robot and a checkerboard on its tool.

    ros2 launch grasp_bringup real_ur3.launch.py robot_ip:=192.168.1.102 calibrate:=true \
        calibration_file:=$HOME/ur3_calibration.yaml

(real_ur3.launch.py with calibrate:=true starts the driver, the camera and this node instead of the grasp-learning
nodes.) The node waits for the robot (its /joint_states, then the External Control program, as the executor does),
moves tool0 through a grid of poses (`grid_*`, each turned by `tilt` degrees about a different axis), takes the
colour image at each once the arm has stopped for `settle_time`, finds the checkerboard (`board_*`) and solves the
camera's pose in `moveit.base_frame` together with the board's pose on the tool (grasp_core.hand_eye: the maths,
the procedure). It writes `output` in config/ur3_calibration.yaml's format, with the residuals in its comment, and
every view (tool pose, corners, intrinsics) to `<output>.observations.json` beside it. A result whose corner RMS
residual is above `max_corner_rms_mm` does not replace `output`: it goes to `<output>.rejected.yaml` and the node
exits with 1. Poses the planner cannot reach and views without the whole board are skipped and said.

Motion and MoveItPy live in grasp_execution.moveit_backend (the moveit seam; `moveit.*` parameters as the
executor's); this module only wires ROS topics to grasp_core.hand_eye.
"""
from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from grasp_core.hand_eye import (CameraIntrinsics, Checkerboard, HandEyeResult, calibration_poses,
                                 collect_observations, solve_hand_eye)
from grasp_perception.calibration import CameraCalibration, save_calibration
from grasp_ros.conversions import image_to_numpy
from grasp_ros.params import ParameterError, declare_config, in_range, one_of, parameter
from grasp_ros.qos import CAMERA_QOS_CHOICES, camera_qos
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image

from grasp_execution.moveit_backend import PARAM_PREFIX, MoveItBackendConfig


def _three(check=None):
    return lambda v: len(v) == 3 and (check is None or all(check(x) for x in v))


@dataclass(frozen=True)
class HandEyeConfig:
    """The calibration's parameters; the robot's are MoveItBackendConfig's (`moveit.*`)."""

    output: str = parameter("", "Calibration YAML to write (config/ur3_calibration.yaml's format); required.",
                            check=lambda v: bool(v.strip()), requirement="a file path")
    camera_frame: str = parameter("", "Frame of the written camera pose ('': the images' frame_id, e.g. "
                                  "camera_color_optical_frame).")
    image_topic: str = parameter("camera/camera/color/image_raw", "Colour images (rgb8, bgr8 or mono8).")
    camera_info_topic: str = parameter("camera/camera/color/camera_info", "CameraInfo of the colour camera.")
    camera_qos: str = parameter("reliable", "QoS of the camera subscriptions (grasp_ros.qos: reliable for the "
                                "D435, or sensor_data).", check=one_of(*CAMERA_QOS_CHOICES),
                                requirement=f"one of {list(CAMERA_QOS_CHOICES)}")
    board_columns: int = parameter(4, "Inner corners of the checkerboard along its long side (OpenCV pattern "
                                   "size); one count even, the other odd.", check=in_range(2, 50),
                                   requirement="2 <= board_columns <= 50")
    board_rows: int = parameter(3, "Inner corners along the other side.", check=in_range(2, 50),
                                requirement="2 <= board_rows <= 50")
    board_square: float = parameter(0.02, "Side of one printed square, metres (measure the print).",
                                    check=in_range(0.001, 0.5), requirement="0.001 <= board_square <= 0.5")
    grid_center: tuple[float, ...] = parameter((-0.312, 0.0, 0.0), "Centre of the tool0 positions, base_frame, "
                                               "metres (default: over config/ur3_real.yaml's workspace).",
                                               check=_three(), requirement="3 numbers")
    grid_size: tuple[float, ...] = parameter((0.12, 0.12, 0.1), "Extent of the tool0 positions along x, y, z, "
                                             "metres.", check=_three(lambda v: 0 <= v <= 1.0),
                                             requirement="3 numbers in [0, 1]")
    grid_points: tuple[int, ...] = parameter((3, 3, 2), "Positions along x, y, z.",
                                             check=_three(lambda v: 1 <= v <= 20), requirement="3 integers in [1, 20]")
    tool_rpy: tuple[float, ...] = parameter((0.0, 0.0, 0.0), "tool0 orientation (roll, pitch, yaw about the "
                                            "base_frame axes, radians) at which the board faces the camera; (0, 0, "
                                            "0): the flange points up, as in VPG's calibrate.py.",
                                            check=_three(), requirement="3 numbers")
    tilt: float = parameter(15.0, "Degrees each pose is turned about the base x, y or z axis in turn (the solve "
                            "needs rotations about two axes at least).", check=in_range(3.0, 45.0),
                            requirement="3 <= tilt <= 45")
    settle_time: float = parameter(1.0, "Seconds to wait after each motion before the image is taken.",
                                   check=in_range(0.0, 30.0), requirement="0 <= settle_time <= 30")
    image_timeout: float = parameter(5.0, "Seconds to wait for an image taken after the arm stopped.",
                                     check=in_range(0.1, 120.0), requirement="0.1 <= image_timeout <= 120")
    min_views: int = parameter(8, "Views with the whole board needed to solve.", check=in_range(3, 1000),
                               requirement="3 <= min_views <= 1000")
    max_corner_rms_mm: float = parameter(5.0, "A result whose corner RMS residual is larger does not replace "
                                         "`output` (written to <output>.rejected.yaml instead).",
                                         check=in_range(0.1, 100.0), requirement="0.1 <= max_corner_rms_mm <= 100")


def intrinsics_from_camera_info(info: CameraInfo) -> CameraIntrinsics:
    k = [float(v) for v in info.k]
    if len(k) != 9 or not k[0] > 0 or not k[4] > 0:
        raise ValueError(f"CameraInfo k {k} holds no focal length: is the camera calibrated?")
    if info.distortion_model not in ("", "plumb_bob", "rational_polynomial"):
        raise ValueError(f"distortion model '{info.distortion_model}' is not one OpenCV reads (plumb_bob, "
                         "rational_polynomial)")
    return CameraIntrinsics(k[0], k[4], k[2], k[5], tuple(float(v) for v in info.d))


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else np.round(image[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)


def write_results(result: HandEyeResult | None, observations, intrinsics: CameraIntrinsics | None,
                  board: Checkerboard, base_frame: str, camera_frame: str, output: Path,
                  max_corner_rms_mm: float) -> tuple[Path | None, Path]:
    """The views to <output>.observations.json (always) and the calibration to `output`, or to
    <output>.rejected.yaml when its residual is too large. Returns (calibration path or None, views path)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    views = output.with_name(output.stem + ".observations.json")
    views.write_text(json.dumps({
        "board": {"columns": board.columns, "rows": board.rows, "square": board.square},
        "intrinsics": None if intrinsics is None else {"fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx,
                                                       "cy": intrinsics.cy, "distortion": list(intrinsics.distortion)},
        "base_frame": base_frame, "camera_frame": camera_frame,
        "views": [{"tool_pose": o.tool_pose.tolist(), "corners": o.corners.tolist()} for o in observations]},
        indent=1))
    if result is None:
        return None, views
    calibration = CameraCalibration.from_matrix(base_frame, camera_frame, result.camera_pose)
    board_xyz = ", ".join(f"{v:.4f}" for v in result.board_in_tool[:3, 3])
    board_rpy = ", ".join(f"{v:.2f}" for v in Rotation.from_matrix(result.board_in_tool[:3, :3]).as_euler(
        "xyz", degrees=True))
    comment = (f"Hand-eye calibration (grasp_execution hand_eye_calibration), {time.strftime('%Y-%m-%d %H:%M')}"
               f"\n{result.views} views of a {board.columns} x {board.rows} board of {1000 * board.square:g} mm "
               f"squares; residuals: corners {result.corner_rms_mm:.2f} mm RMS, reprojection "
               f"{result.reprojection_rms_px:.2f} px RMS\nboard in the tool frame: [{board_xyz}] m, rpy "
               f"[{board_rpy}] deg\nThe views: {views.name}")
    target = output if result.corner_rms_mm <= max_corner_rms_mm else output.with_name(output.stem + ".rejected.yaml")
    save_calibration(calibration, target, comment)
    return target, views


class HandEyeCalibrationNode(Node):
    def __init__(self, robot=None, **kwargs):
        """`robot`: (arm, gate) stand-ins for MoveItArm and ProgramRunningGate (tests); None: MoveItPy, made when
        the calibration starts (so the node and its parameters come up without the robot)."""
        super().__init__("hand_eye_calibration", **kwargs)
        self.config = declare_config(self, HandEyeConfig)
        self.moveit_config = declare_config(self, MoveItBackendConfig, PARAM_PREFIX)
        config = self.config
        try:
            self.board = Checkerboard(config.board_columns, config.board_rows, config.board_square)
        except ValueError as e:
            raise ParameterError(f"board_columns / board_rows / board_square: {e}") from None
        orientation = Rotation.from_euler("xyz", config.tool_rpy).as_matrix()
        self.poses = calibration_poses(config.grid_center, config.grid_size, config.grid_points, orientation,
                                       config.tilt)
        self._lock = threading.Condition()
        self._image: tuple[float, Image] | None = None
        self.camera_info: CameraInfo | None = None
        qos = camera_qos(config.camera_qos)
        self.create_subscription(Image, config.image_topic, self._on_image, qos)
        self.create_subscription(CameraInfo, config.camera_info_topic, self._on_info, qos)
        self.arm, self.gate = robot if robot is not None else (None, None)
        self.result: HandEyeResult | None = None
        self.written: Path | None = None
        self.error: str | None = None
        self.done, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="hand_eye", daemon=True)
        self.get_logger().info(f"hand-eye calibration: {len(self.poses)} poses around {list(config.grid_center)} in "
                               f"{self.moveit_config.base_frame}, a {self.board.columns} x {self.board.rows} board of "
                               f"{1000 * config.board_square:g} mm squares on {self.moveit_config.pose_link}, images "
                               f"from {self.resolve_topic_name(config.image_topic)}; writes {config.output}")

    def _make_robot(self):
        try:
            from grasp_execution.moveit_backend import make_calibration_arm  # noqa: PLC0415 - MoveItPy
            # The node is spun by main() already: the robot-state wait only waits.
            return make_calibration_arm(self, self.moveit_config, spin=lambda node, timeout_sec: time.sleep(
                timeout_sec))
        except ImportError as e:
            raise RuntimeError(f"the calibration needs moveit_py, moveit_configs_utils and ur_msgs (a ROS 2 Jazzy "
                               f"install with MoveIt and ur_robot_driver): {e}") from None

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._image = (time.monotonic(), msg)
            self._lock.notify_all()

    def _on_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def fresh_image(self, after: float) -> Image:
        """The first image that arrived after `after` (monotonic)."""
        deadline = time.monotonic() + self.config.image_timeout
        with self._lock:
            while self._image is None or self._image[0] <= after:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    raise TimeoutError(f"no image on {self.resolve_topic_name(self.config.image_topic)} within "
                                       f"{self.config.image_timeout:g} s")
                self._lock.wait(min(remaining, 0.2))
            return self._image[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10.0)

    def _run(self) -> None:
        try:
            self._calibrate()
        except Exception as e:  # noqa: BLE001 - report, then let main() exit 1
            self.error = f"{type(e).__name__}: {e}"
            self.get_logger().fatal(f"calibration stopped: {self.error}\n{traceback.format_exc()}")
        finally:
            self.done.set()

    def _move_to(self, pose) -> bool:
        if not self.arm.move_to(pose):
            return False
        self._stop.wait(self.config.settle_time)
        return True

    def _capture(self):
        image = self.fresh_image(time.monotonic())
        gray = to_gray(image_to_numpy(image, ("rgb8", "bgr8", "mono8")))
        self._frame_id = image.header.frame_id
        return gray, self.arm.tool_pose()

    def _calibrate(self) -> None:
        config, log = self.config, self.get_logger()
        if self.arm is None:
            self.arm, self.gate = self._make_robot()
        if self.gate is not None:
            self.gate.wait(self._stop)
        observations = collect_observations(self.poses, self._move_to, self._capture, self.board, log=log.info,
                                            should_stop=self._stop.is_set)
        home = self.moveit_config.home_configuration
        if home and not self._stop.is_set() and not self.arm.go_named(home):
            log.warning(f"no plan back to '{home}': move the arm out of the camera's view yourself")
        if self.camera_info is None:
            raise RuntimeError(f"no CameraInfo on {self.resolve_topic_name(config.camera_info_topic)}")
        intrinsics = intrinsics_from_camera_info(self.camera_info)
        camera_frame = config.camera_frame or getattr(self, "_frame_id", "") or self.camera_info.header.frame_id
        output = Path(config.output).expanduser()
        try:
            self.result = solve_hand_eye(observations, self.board, intrinsics, config.min_views)
        except ValueError:
            write_results(None, observations, intrinsics, self.board, self.moveit_config.base_frame, camera_frame,
                          output, config.max_corner_rms_mm)
            raise
        self.written, views = write_results(self.result, observations, intrinsics, self.board,
                                            self.moveit_config.base_frame, camera_frame, output,
                                            config.max_corner_rms_mm)
        r = self.result
        t = r.camera_pose[:3, 3]
        summary = (f"camera {camera_frame} at [{t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}] in "
                   f"{self.moveit_config.base_frame} from {r.views} views; residuals: corners "
                   f"{r.corner_rms_mm:.2f} mm RMS, reprojection {r.reprojection_rms_px:.2f} px RMS")
        if self.written != output:
            self.error = (f"{summary}: above max_corner_rms_mm = {config.max_corner_rms_mm:g}, so {output} is not "
                          f"replaced; the result is in {self.written} and the views in {views}. Check the board "
                          "(flat, its square size) and the camera intrinsics, then run again")
            log.error(self.error)
        else:
            log.info(f"{summary}; wrote {output} (and the views to {views.name}). Use it: "
                     f"real_ur3.launch.py calibration_file:={output}")


def main(args=None) -> int:
    rclpy.init(args=args)
    try:
        node = HandEyeCalibrationNode()
    except ParameterError as e:
        rclpy.logging.get_logger("hand_eye_calibration").fatal(str(e))
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node.start()
    try:
        while rclpy.ok() and not node.done.is_set():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return 1 if node.error or node.result is None else 0


if __name__ == "__main__":
    raise SystemExit(main())

