"""Capture heightmaps from the live `Heightmap` topic (real camera or simulator) into a key-point dataset.

Two ways to run it:
- the `capture` command takes `--count` pictures and exits: one per Enter key press (rearrange the objects
  between pictures; the picture is the first frame after the key press), or one every `--every` seconds;
      python -m grasp_annotation.capture --dataset data/real_keypoints --count 20
- the `capture_node` node keeps running and saves one picture per call of its `~/capture` service
  (std_srvs/Trigger), and one every `every` seconds when that parameter is > 0.

Each picture is a new frame: a frame already saved is never saved twice. The workspace comes from the
Heightmap message; the camera notes (calibration YAML, CameraInfo intrinsics, topic, frame) go into the
dataset's `camera` entry.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
import yaml
from grasp_interfaces.msg import Heightmap
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo
from std_srvs.srv import Trigger

from grasp_core.dataset import DatasetError
from grasp_ros.conversions import msg_to_heightmap
from grasp_ros.params import declare_config, parameter
from grasp_ros.qos import CAMERA_QOS, LATEST_QOS

from grasp_annotation.capture_store import append_capture, check_capture_target

DEFAULT_TOPIC = "grasp/heightmap"
DEFAULT_CAMERA_INFO_TOPIC = "camera/camera/color/camera_info"


def camera_info_dict(msg: CameraInfo) -> dict:
    return {"width": int(msg.width), "height": int(msg.height), "distortion_model": msg.distortion_model,
            "d": [float(x) for x in msg.d], "k": [float(x) for x in msg.k], "r": [float(x) for x in msg.r],
            "p": [float(x) for x in msg.p], "frame_id": msg.header.frame_id}


def load_calibration(path: str) -> dict:
    """A calibration YAML file as a dict (stored verbatim in the dataset, so the data says how it was made)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"calibration file {path} does not exist")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"calibration file {path} is not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"calibration file {path} must hold a mapping, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class CaptureConfig:
    dataset: str = parameter("", "dataset folder to add the heightmaps to (created if missing)", check=bool,
                             requirement="a folder path")
    topic: str = parameter(DEFAULT_TOPIC, "grasp_interfaces/Heightmap topic to capture from", check=bool,
                           requirement="a topic name")
    camera_info_topic: str = parameter(DEFAULT_CAMERA_INFO_TOPIC, "sensor_msgs/CameraInfo topic whose intrinsics "
                                       "are stored with the dataset ('' = none)")
    calibration: str = parameter("", "calibration YAML file stored with the dataset ('' = none)")
    every: float = parameter(0.0, "seconds between automatic captures (0 = only on request)", check=lambda v: v >= 0,
                             requirement=">= 0")
    count: int = parameter(0, "stop automatic captures after this many (0 = no limit)", check=lambda v: v >= 0,
                           requirement=">= 0")


class HeightmapCapture(Node):
    """Keeps the newest heightmap and writes it to the dataset on request, on a timer, or from `capture`."""

    def __init__(self, name: str = "heightmap_capture", parameter_overrides: list[Parameter] | None = None):
        super().__init__(name, parameter_overrides=parameter_overrides)
        self.config = declare_config(self, CaptureConfig)
        calibration = self.config.calibration
        check_capture_target(self.config.dataset)
        self.calibration = load_calibration(calibration) if calibration else None
        self.calibration_file = str(Path(calibration).resolve()) if calibration else None
        self.latest: Heightmap | None = None
        self.received = 0       # frames seen so far
        self.saved_frame = 0    # `received` at the last save: a frame is new when received > saved_frame
        self.captured: list[str] = []
        self.log_captures = True  # the capture command prints them itself
        self.camera_info: CameraInfo | None = None
        self._warned_no_info = False
        self.subscription = self.create_subscription(Heightmap, self.config.topic, self._on_heightmap,
                                                     LATEST_QOS)
        if self.config.camera_info_topic:
            self.create_subscription(CameraInfo, self.config.camera_info_topic, self._on_camera_info, CAMERA_QOS)
        self.service = self.create_service(Trigger, "~/capture", self._on_trigger)
        every = self.config.every
        self.timer = self.create_timer(every, self._on_timer) if every > 0 else None
        self.get_logger().info(f"capturing {self.subscription.topic_name} into {self.config.dataset}")

    def _on_heightmap(self, msg: Heightmap) -> None:
        self.latest = msg
        self.received += 1

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    @property
    def has_new_frame(self) -> bool:
        return self.latest is not None and self.received > self.saved_frame

    def camera_notes(self, msg: Heightmap) -> dict:
        notes = {"source": f"ROS topic {self.subscription.topic_name}", "frame_id": msg.header.frame_id}
        if self.calibration is not None:
            notes["calibration_file"] = self.calibration_file
            notes["calibration"] = self.calibration
        if self.camera_info is not None:
            notes["intrinsics"] = camera_info_dict(self.camera_info)
        elif self.config.camera_info_topic and not self._warned_no_info:
            self._warned_no_info = True
            self.get_logger().warning(f"no CameraInfo on {self.config.camera_info_topic} yet: the dataset gets no "
                                      "intrinsics (set camera_info_topic to '' if there is no such topic)")
        return notes

    def capture_once(self) -> tuple[bool, str]:
        """Save the newest frame if it was not saved yet; (success, message)."""
        if not self.has_new_frame:
            return False, f"no new heightmap on {self.subscription.topic_name} since the last capture"
        msg, frame = self.latest, self.received
        try:
            color, depth, workspace = msg_to_heightmap(msg)
            sample_id = append_capture(self.config.dataset, color, depth, workspace, self.camera_notes(msg))
        except ValueError as e:  # a bad message or a dataset that does not fit: say why, keep running
            self.get_logger().error(f"capture failed: {e}")
            return False, str(e)
        self.saved_frame = frame
        self.captured.append(sample_id)
        message = f"saved sample {sample_id} ({len(self.captured)} this run) to {self.config.dataset}"
        if self.log_captures:
            self.get_logger().info(message)
        return True, message

    def _on_trigger(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.capture_once()
        return response

    def _on_timer(self) -> None:
        if self.config.count and len(self.captured) >= self.config.count:
            self.timer.cancel()
            self.get_logger().info(f"captured {len(self.captured)} heightmaps; the ~/capture service stays up")
            return
        ok, message = self.capture_once()
        if not ok:
            self.get_logger().warning(message)


def discard_older_frames(node: HeightmapCapture) -> None:
    """Take what DDS holds now and count it as seen, so the next picture is a frame that arrives after this."""
    for _ in range(10):
        rclpy.spin_once(node, timeout_sec=0.0)
    node.saved_frame = node.received


def wait_for_new_frame(node: HeightmapCapture, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not node.has_new_frame and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return node.has_new_frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="capture", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True,
                        help="dataset folder (created if missing; new pictures go after the ones already there)")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"Heightmap topic (default {DEFAULT_TOPIC})")
    parser.add_argument("--count", type=int, default=1, help="pictures to take (default 1)")
    parser.add_argument("--every", type=float, default=0.0,
                        help="seconds between pictures; 0 (default): press Enter for each one when --count > 1")
    parser.add_argument("--calibration", default="", help="calibration YAML to store with the dataset")
    parser.add_argument("--camera-info-topic", default=DEFAULT_CAMERA_INFO_TOPIC,
                        help="CameraInfo topic whose intrinsics are stored ('' = none)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a new heightmap")
    args, ros_args = parser.parse_known_args(argv)
    if args.count < 1 or args.every < 0 or args.timeout <= 0:
        parser.error("need --count >= 1, --every >= 0 and --timeout > 0")
    interactive = args.count > 1 and args.every == 0
    if interactive and not sys.stdin.isatty():
        parser.error("--count > 1 without --every waits for Enter before each picture: run it in a terminal, "
                     "or give --every SECONDS")
    rclpy.init(args=ros_args)
    node = None
    try:
        node = HeightmapCapture("heightmap_capture", [
            Parameter("dataset", value=args.dataset), Parameter("topic", value=args.topic),
            Parameter("calibration", value=args.calibration),
            Parameter("camera_info_topic", value=args.camera_info_topic)])
        node.log_captures = False
        next_time = time.monotonic()
        for k in range(args.count):
            if interactive:
                input(f"[{k + 1}/{args.count}] arrange the objects, then press Enter to capture ")
                discard_older_frames(node)  # a frame from before Enter may show a hand in the scene
            elif k > 0:
                while time.monotonic() < next_time:
                    rclpy.spin_once(node, timeout_sec=max(0.0, min(0.05, next_time - time.monotonic())))
            next_time = time.monotonic() + args.every
            if not wait_for_new_frame(node, args.timeout):
                print(f"capture: error: no new heightmap on {node.subscription.topic_name} within {args.timeout} s "
                      f"(is the heightmap node running?)", file=sys.stderr)
                return 1
            ok, message = node.capture_once()
            if not ok:
                print(f"capture: error: {message}", file=sys.stderr)
                return 1
            print(message, flush=True)
        return 0
    except (DatasetError, ValueError) as e:
        print(f"capture: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ncapture: stopped; {len(node.captured) if node else 0} pictures saved", file=sys.stderr)
        return 130
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def node_main(argv: list[str] | None = None) -> None:
    """The long-running node: `capture_node --ros-args -p dataset:=DIR [-p every:=5.0 -p count:=20]`."""
    rclpy.init(args=argv)
    node = None
    try:
        node = HeightmapCapture()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
