"""sim_node: the MuJoCo grasping world (grasp_core.sim.GraspWorld) as a node that looks like the real robot cell.

Camera topics exactly as realsense2_camera with `align_depth.enable:=true` publishes them: colour rgb8,
aligned depth 16UC1 in millimetres (0 = no return), CameraInfo, all in `camera_frame`
(camera_color_optical_frame). The depth has a D435's noise and holes (grasp_core.sim.depth_noise) unless
`depth_noise` is false. So the heightmap node runs unchanged on the real and the simulated cell; the camera's
pose in `base_frame` (world) is in config/ur5_sim_calibration.yaml (checked against the world by a test).
Frames go out `post_action_delay` s after every reset and grasp (after the service response is sent, so their
stamps are later than the caller's "done" time) and at `publish_rate` Hz for RViz and late joiners; `joint_states`
with them.

Services:
- `sim/execute_grasp` (ExecuteGrasp): pose.position x, y = jaw centre, z = surface height there (the world grasps
  `grasp_depth` below it, never letting the finger tips touch the table); `angle` = closing-axis yaw (the pose's
  orientation is not read). The pose must be in `base_frame`. Bad input (NaN, outside the workspace, wrong frame)
  -> success=false and a message; never raises.
- `sim/reset` (ResetScene): a new scene (num_objects 0 / object_set "" / seed < 0 keep the configured values).

With `auto_reset` false (the default) the world never resets by itself: the executor decides (and marks the
transition terminal), since ExecuteGrasp has no field that could tell it the scene was replaced.
Spin the node in the thread that created it (rclpy.spin / a SingleThreadedExecutor): the world's offscreen GL
context belongs to that thread.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from grasp_core.sim import OBJECT_LIBRARIES, GraspWorld, SimConfig, world_config
from grasp_core.sim.world import MAX_OBJECTS
from grasp_interfaces.srv import ExecuteGrasp, ResetScene
from grasp_ros.conversions import numpy_to_image
from grasp_ros.node_main import spin_node
from grasp_ros.params import ParameterError, declare_config, in_range, one_of, parameter
from grasp_ros.qos import SENSOR_QOS
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header


@dataclass(frozen=True)
class SimNodeConfig:
    """The sim node's parameters: the world's, with grasp_core.sim.SimConfig's defaults (the harness's) except
    auto_reset (off: the executor resets), and the camera-like topics and frames."""

    robot: str = parameter(SimConfig.robot, "Simulated arm: ur5 (the seed's simulation) or ur3 (real twin).",
                           check=one_of("ur5", "ur3"), requirement="ur5 or ur3")
    num_objects: int = parameter(SimConfig.num_objects, "Objects dropped per scene (the seed: 2, 4, 6, 10).",
                                 check=in_range(1, MAX_OBJECTS), requirement=f"1 <= num_objects <= {MAX_OBJECTS}")
    object_library: str = parameter(SimConfig.object_library, "random_objects (1000 irregular meshes, the default "
                                    "world) or blocks (the seed's primitive blocks).",
                                    check=one_of(*OBJECT_LIBRARIES), requirement=" or ".join(OBJECT_LIBRARIES))
    object_set: str = parameter(SimConfig.object_set, "train (the library's training objects) or novel (its "
                                "held-out ones).", check=one_of("train", "novel"), requirement="train or novel")
    seed: int = parameter(SimConfig.seed, "Random seed of the world (object shapes, colours, drops).",
                          check=in_range(0, 2**63 - 1), requirement="seed >= 0")
    auto_reset: bool = parameter(False, "Let the world reset itself when empty or stuck (leave false when an "
                                 "executor drives the sim: it resets through sim/reset).")
    depth_noise: bool = parameter(True, "Simulate a RealSense D435's depth (per-pixel and correlated noise, holes "
                                  "at edges and in stereo shadows, 1 mm steps; grasp_core.sim.depth_noise); false: "
                                  "exact depth.")
    publish_rate: float = parameter(1.0, "Camera/joint_states republish rate in Hz between actions (0: only after "
                                    "resets and grasps).", check=in_range(0.0, 30.0), requirement="0 <= rate <= 30")
    post_action_delay: float = parameter(0.05, "Seconds after a reset/grasp response before its camera frame goes "
                                         "out.", check=in_range(0.0, 5.0), requirement="0 <= post_action_delay <= 5")
    camera_frame: str = parameter("camera_color_optical_frame", "frame_id of the camera images (the RealSense "
                                  "colour optical frame).")
    base_frame: str = parameter("world", "The world / simulated robot base frame.")
    color_topic: str = parameter("camera/camera/color/image_raw", "Colour image topic.")
    depth_topic: str = parameter("camera/camera/aligned_depth_to_color/image_raw", "Aligned depth topic (16UC1, "
                                 "millimetres).")
    camera_info_topic: str = parameter("camera/camera/color/camera_info", "CameraInfo topic.")
    joint_states_topic: str = parameter("joint_states", "JointState topic.")


class SimNode(Node):
    def __init__(self, **kwargs):
        super().__init__("grasp_sim", **kwargs)
        self.config = config = declare_config(self, SimNodeConfig)
        settings = world_config(config.object_library, not config.depth_noise, robot=config.robot,
                                num_objects=config.num_objects, object_set=config.object_set, seed=config.seed,
                                auto_reset=config.auto_reset)
        t0 = time.perf_counter()
        try:
            self.world = GraspWorld(settings)
        except ValueError as e:
            raise ParameterError(f"cannot build the simulated world: {e}") from None
        self.get_logger().info(f"simulated {config.robot} world with {len(self.world.objects_in_workspace())} "
                               f"{config.object_library} {config.object_set} objects (seed {config.seed}, "
                               f"{'D435-like' if config.depth_noise else 'exact'} depth) built in "
                               f"{time.perf_counter() - t0:.2f} s; workspace {self.world.workspace}")
        self.grasps = 0
        self.grasp_successes = 0
        self.refused = 0

        self.color_pub = self.create_publisher(Image, config.color_topic, SENSOR_QOS)
        self.depth_pub = self.create_publisher(Image, config.depth_topic, SENSOR_QOS)
        self.info_pub = self.create_publisher(CameraInfo, config.camera_info_topic, SENSOR_QOS)
        self.joint_pub = self.create_publisher(JointState, config.joint_states_topic, SENSOR_QOS)
        self.create_service(ExecuteGrasp, "sim/execute_grasp", self._on_execute_grasp)
        self.create_service(ResetScene, "sim/reset", self._on_reset)
        self._deferred = None
        if config.publish_rate > 0:
            self.create_timer(1.0 / config.publish_rate, self.publish_scene)
        self._schedule_publish()
        self.get_logger().info(f"serving {self.resolve_service_name('sim/execute_grasp')} and "
                               f"{self.resolve_service_name('sim/reset')}; camera on "
                               f"{self.resolve_topic_name(config.color_topic)}")

    # ------------------------------------------------------------------------------------------------ output
    def publish_scene(self) -> None:
        """The current scene as RealSense-style messages (stamped now) plus joint_states."""
        frame = self.world.render()
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.config.camera_frame)
        info = CameraInfo(header=header, **frame.intrinsics.as_camera_info())
        self.info_pub.publish(info)  # first, so a new subscriber has the intrinsics when the images arrive
        self.color_pub.publish(numpy_to_image(frame.color, "rgb8", header))
        self.depth_pub.publish(numpy_to_image(frame.depth_mm, "16UC1", header))
        joints = JointState(header=Header(stamp=header.stamp, frame_id=self.config.base_frame),
                            name=self.world.joint_names(),
                            position=[float(v) for v in self.world.joint_positions()])
        self.joint_pub.publish(joints)

    def _schedule_publish(self) -> None:
        """Publish once, `post_action_delay` from now (after the current service response has gone out)."""
        if self._deferred is not None:
            self.destroy_timer(self._deferred)
        self._deferred = self.create_timer(max(self.config.post_action_delay, 1e-3), self._publish_deferred)

    def _publish_deferred(self) -> None:
        self.destroy_timer(self._deferred)
        self._deferred = None
        self.publish_scene()

    # ------------------------------------------------------------------------------------------------ services
    def _on_execute_grasp(self, request: ExecuteGrasp.Request, response: ExecuteGrasp.Response):
        try:
            self._execute(request, response)
        except Exception as e:  # noqa: BLE001 - a request must never take the node down
            response.success = False
            response.grasp_success = False
            response.failure_reason = ExecuteGrasp.Response.REASON_INVALID_TARGET
            response.message = f"internal error: {type(e).__name__}: {e}"
            self.get_logger().error(f"execute_grasp failed: {response.message}")
        if not response.success:
            self.refused += 1
        self._schedule_publish()
        return response

    def _execute(self, request: ExecuteGrasp.Request, response: ExecuteGrasp.Response) -> None:
        frame = request.pose.header.frame_id
        pos = request.pose.pose.position
        if frame != self.config.base_frame:
            self._refuse(response, f"grasp pose frame '{frame}' is not the simulation's base frame "
                                   f"'{self.config.base_frame}'")
            return
        values = (pos.x, pos.y, pos.z, request.angle)
        if not all(math.isfinite(v) for v in values):
            self._refuse(response, f"grasp target is not finite: x={pos.x} y={pos.y} z={pos.z} angle={request.angle}")
            return
        t0 = time.perf_counter()
        result = self.world.execute_grasp(pos.x, pos.y, request.angle, z=pos.z)
        response.success = bool(result.executed)
        response.message = result.message
        response.grasp_success = bool(result.grasp_success)
        response.failure_reason = int(result.failure_reason)
        response.grasped_object = result.grasped_object
        response.jaw_opening = float(result.jaw_opening)
        response.objects_remaining = int(result.objects_remaining)
        if not result.executed:
            self.get_logger().warning(f"execute_grasp refused: {result.message}")
            return
        self.grasps += 1
        self.grasp_successes += int(result.grasp_success)
        self.get_logger().info(
            f"grasp {self.grasps} at ({pos.x:.3f}, {pos.y:.3f}, {pos.z:.3f}) angle {math.degrees(request.angle):.0f} "
            f"deg: {'success' if result.grasp_success else 'failure'} ({result.message}); "
            f"{result.objects_remaining} objects left; {1000 * (time.perf_counter() - t0):.0f} ms")

    def _refuse(self, response: ExecuteGrasp.Response, message: str) -> None:
        response.success = False
        response.grasp_success = False
        response.failure_reason = ExecuteGrasp.Response.REASON_INVALID_TARGET
        response.message = message
        response.jaw_opening = float(self.world.jaw_opening())
        response.objects_remaining = len(self.world.objects_in_workspace())
        self.get_logger().warning(f"execute_grasp refused: {message}")

    def _on_reset(self, request: ResetScene.Request, response: ResetScene.Response):
        try:
            self.world.reset(num_objects=request.num_objects or None,
                             seed=int(request.seed) if request.seed >= 0 else None,
                             object_set=request.object_set or None)
            response.success = True
            response.num_objects = len(self.world.objects_in_workspace())
            response.message = (f"new scene: {response.num_objects} {self.world.config.object_set} objects"
                                + (f" (seed {request.seed})" if request.seed >= 0 else ""))
            self.get_logger().info(f"reset: {response.message}")
        except Exception as e:  # noqa: BLE001 - bad requests (ValueError) and world errors alike
            response.success = False
            response.num_objects = len(self.world.objects_in_workspace())
            response.message = f"reset refused: {e}"
            self.get_logger().warning(response.message)
        self._schedule_publish()
        return response

    def destroy_node(self):
        self.world.close()
        return super().destroy_node()


def main(args=None) -> int:
    return spin_node(SimNode, "grasp_sim", args)


if __name__ == "__main__":
    raise SystemExit(main())
