"""The `moveit` backend: a real UR3 (ur_robot_driver) grasps with moveit_py and a gripper on the UR tool I/O.

One grasp, as VPG's real robot does it: open the jaw; plan and execute to the pre-grasp pose (`approach_height`
above the grasp), down to the grasp pose, close the jaw (SetIO on a tool digital output), back up to the lift pose;
read whether something is held (the RG2's tool analog input 2 above `grip_voltage`, VPG's 0.26 V; or a digital
input); release it (at `drop_configuration` if set, else where it is); return to `home_configuration`, out of the
camera's view, so the next camera frame shows the scene. Poses are for `pose_link` (tool0): the jaw centre is
`tcp_offset` below it along the tool z axis, which points down. The descent and the lift are straight lines (Pilz
LIN, the `pilz_lin` plan request parameters of config/moveit_py_ur3.yaml); the approach and the way home are free
OMPL motions. A grasp that cannot be planned down to the grasp pose touched nothing: it is returned as not executed
(GraspFailure.UNREACHABLE), so it never becomes an experience. The table and the camera mount are collision objects
of the planning scene (`table_box`, `camera_box`), and the gripper is a box attached to tool0 (`gripper_box`), so
the plans keep the jaw off them; MoveItPy's planning scene monitor publishes them on /monitored_planning_scene for
RViz.

Start-up (create_moveit_backend): the executor's own node waits for the robot's /joint_states (ur_robot_driver's
joint_state_broadcaster publishes them as soon as the driver talks to the controller, before any program runs),
then MoveItPy is made once. It is not retried: a MoveItPy whose construction fails keeps its node spinning in a
thread of this process, so a second try would add another node of the same name. Then the tool voltage is set
through SetIO (`tool_voltage`: the driver's own `tool_voltage` argument acts only with tool communication on
e-Series; SetIO works on CB3 too) and the collision objects are added.

Motion needs more than /joint_states: until the External Control program runs on the pendant (or the driver sent it
in headless mode), the driver's controller stopper keeps scaled_joint_trajectory_controller inactive and every
trajectory is refused. So before the first grasp and after a failed motion the backend waits until
`program_running_topic` (/io_and_status_controller/robot_program_running: std_msgs/Bool, reliable and transient
local, published when it changes) says true, and logs what to do on the pendant meanwhile (`wait_until_ready`;
'' turns it off, as with mock hardware, which runs no program).

The hand-eye calibration (grasp_execution.hand_eye_node) moves the same arm through `make_calibration_arm`: the
same start-up and planning scene, a MoveItArm that goes to 4x4 tool poses and reports where the tool is.

The moveit_py, moveit_configs_utils, moveit_msgs, shape_msgs and ur_msgs imports live in `start_robot` and
the readers, so this module imports (and its logic is tested with fakes of the MoveItPy / PlanningComponent objects)
without MoveIt. On a real Jazzy install, MoveItPy is built from ur_moveit_config:
    MoveItPy(node_name=..., config_dict=MoveItConfigsBuilder("ur", package_name="ur_moveit_config")...to_dict())
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from geometry_msgs.msg import PoseStamped
from grasp_core.grasp_failure import GraspFailure
from grasp_core.grasp_pose import fold_jaw_yaw, top_down_quaternion
from grasp_ros.params import ParameterError, in_range, one_of, parameter

from grasp_execution.backend import GraspBackend, GraspOutcome, ResetOutcome
from grasp_execution.service_call import call_service

PARAM_PREFIX = "moveit."


@dataclass(frozen=True)
class MoveItGraspConfig:
    """Geometry of the grasp primitive. Lengths in metres (base frame), angles in radians."""

    planning_group: str = "ur_manipulator"
    pose_link: str = "tool0"
    base_frame: str = "base_link"
    tcp_offset: float = 0.2            # tool0 flange -> jaw centre along tool z (RG2 on a UR3: measure yours)
    grasp_depth: float = 0.02          # jaw centre this far below the surface height of the proposal
    min_grasp_z: float = -0.235        # the jaw centre never goes lower (VPG's real table z = -0.255, + margin)
    surface_z_min: float = -0.255      # a proposal's surface height must lie in [surface_z_min, surface_z_max]:
    surface_z_max: float = -0.1        # the workspace's z_min, z_max (VPG real, in base_link); else it is refused
    approach_height: float = 0.15      # pre-grasp and lift: this far above the grasp pose
    jaw_yaw_offset: float = 0.0        # closing axis yaw minus tool0 x yaw, as mounted
    home_configuration: str = "home"   # SRDF named state out of the camera's view
    drop_configuration: str = ""       # SRDF named state to release a held object at ('' = release in place)
    linear_plan: str = "pilz_lin"      # plan request parameters of the straight descent/lift ('' = free OMPL)


def grasp_poses(pose: PoseStamped, angle: float, config: MoveItGraspConfig) -> dict[str, PoseStamped]:
    """Pre-grasp, grasp and lift goals for `pose_link`, from a proposal (jaw centre x, y, surface height z).

    The jaw is symmetric, so the yaw is folded into [-pi/2, pi/2) to keep the wrist turn small.
    """
    p = pose.pose.position
    yaw = fold_jaw_yaw(angle + config.jaw_yaw_offset)
    qx, qy, qz, qw = top_down_quaternion(yaw)
    jaw_z = max(p.z - config.grasp_depth, config.min_grasp_z)
    flange_z = jaw_z + config.tcp_offset  # tool z points down: the flange is above the jaw centre
    goals = {}
    for label, z in (("pre-grasp", flange_z + config.approach_height), ("grasp", flange_z),
                     ("lift", flange_z + config.approach_height)):
        goal = PoseStamped()
        goal.header.frame_id = config.base_frame
        goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = float(p.x), float(p.y), float(z)
        o = goal.pose.orientation
        o.x, o.y, o.z, o.w = qx, qy, qz, qw
        goals[label] = goal
    return goals


class ToolIoGripper:
    """A parallel jaw (e.g. OnRobot RG2) switched by one UR digital output; holding() reads a sensor."""

    def __init__(self, set_output: Callable[[int, bool], None], read_holding: Callable[[], tuple[bool, str]],
                 pin: int, close_state: bool = True, settle_time: float = 1.0, sleep=time.sleep,
                 prepare: Callable[[], None] | None = None):
        """`prepare`: called before the first switching (the tool voltage), again until it succeeds."""
        self._set_output, self._read_holding = set_output, read_holding
        self.pin, self.close_state, self.settle_time, self._sleep = int(pin), bool(close_state), settle_time, sleep
        self._prepare = prepare

    def open(self) -> None:
        if self._prepare is not None:
            self._prepare()
            self._prepare = None
        self._set_output(self.pin, not self.close_state)
        self._sleep(self.settle_time)

    def close(self) -> None:
        self._set_output(self.pin, self.close_state)
        self._sleep(self.settle_time)

    def holding(self) -> tuple[bool, str]:
        """(an object is held, what the sensor said)."""
        return self._read_holding()


class NoGripper:
    """moveit.gripper none (a dry run on mock hardware): nothing is switched, nothing is ever held."""

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def holding(self) -> tuple[bool, str]:
        return False, "no gripper (moveit.gripper none: dry run)"


@dataclass(frozen=True)
class SceneBox:
    """A box collision object: centre and size in the planning frame, metres."""

    name: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]


TABLE_THICKNESS = 0.05


def scene_boxes(table_box, camera_box) -> list[SceneBox]:
    """The table (top surface at table_box z) and the camera mount as boxes; a box of size 0 is left out.

    table_box: [centre x, centre y, top z, size x, size y]; camera_box: [centre x, y, z, size x, y, z]."""
    table, camera = [float(v) for v in table_box], [float(v) for v in camera_box]
    if len(table) != 5 or len(camera) != 6:
        raise ValueError(f"table_box needs 5 numbers and camera_box 6, got {len(table)} and {len(camera)}")
    boxes = []
    if min(table[3:]) > 0:
        boxes.append(SceneBox("table", (table[0], table[1], table[2] - TABLE_THICKNESS / 2),
                              (table[3], table[4], TABLE_THICKNESS)))
    if min(camera[3:]) > 0:
        boxes.append(SceneBox("camera_mount", tuple(camera[:3]), tuple(camera[3:])))
    return boxes


GRIPPER_TOUCH_LINKS = ("wrist_3_link", "flange", "tool0")  # ur_description links the gripper box rests on


def gripper_box(size, link: str) -> SceneBox | None:
    """The gripper as a box hanging below `link` (tool0, z down): [size x (the closing axis), size y, length along z],
    centred on the tool axis from the flange down; None for a size of 0."""
    size = [float(v) for v in size]
    if len(size) != 3:
        raise ValueError(f"gripper_box needs 3 numbers [size x, size y, length], got {len(size)}")
    if min(size) <= 0:
        return None
    return SceneBox(f"gripper_on_{link}", (0.0, 0.0, size[2] / 2), tuple(size))


def _box_object(box: SceneBox, frame: str, messages):
    CollisionObject, SolidPrimitive, Pose = messages[:3]
    obj = CollisionObject()
    obj.header.frame_id = frame
    obj.id = box.name
    primitive = SolidPrimitive()
    primitive.type = SolidPrimitive.BOX
    primitive.dimensions = [float(v) for v in box.size]
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in box.center)
    pose.orientation.w = 1.0
    obj.primitives = [primitive]
    obj.primitive_poses = [pose]
    obj.operation = CollisionObject.ADD
    return obj


def _scene_messages():
    from geometry_msgs.msg import Pose  # noqa: PLC0415
    from moveit_msgs.msg import AttachedCollisionObject, CollisionObject  # noqa: PLC0415
    from shape_msgs.msg import SolidPrimitive  # noqa: PLC0415
    return CollisionObject, SolidPrimitive, Pose, AttachedCollisionObject


def add_collision_boxes(robot, boxes: list[SceneBox], frame: str, messages=None) -> None:
    """Add the boxes to MoveItPy's planning scene through its planning scene monitor, which publishes the change
    (RViz's PlanningScene display shows it). `messages`: (CollisionObject, SolidPrimitive, Pose,
    AttachedCollisionObject) classes (moveit_msgs / shape_msgs / geometry_msgs on a real install; fakes in tests)."""
    messages = messages or _scene_messages()
    monitor = robot.get_planning_scene_monitor()
    for box in boxes:
        if not monitor.process_collision_object(_box_object(box, frame, messages)):
            raise RuntimeError(f"the planning scene refused the collision object '{box.name}' in frame '{frame}'")


def attach_gripper_box(robot, box: SceneBox, link: str, messages=None) -> None:
    """Attach `box` (in `link`'s frame) to `link`: MoveIt then plans for the arm with its gripper. It may touch the
    links it is mounted on (GRIPPER_TOUCH_LINKS)."""
    messages = messages or _scene_messages()
    attached = messages[3]()
    attached.link_name = link
    attached.object = _box_object(box, link, messages)
    attached.touch_links = list(GRIPPER_TOUCH_LINKS)
    if not robot.get_planning_scene_monitor().process_attached_collision_object(attached):
        raise RuntimeError(f"the planning scene refused to attach the gripper box to '{link}'")


class MoveItUnavailable(ParameterError):
    """MoveItPy did not start (no robot state, no robot model): the executor stops with this message."""


def start_moveit_py(make_robot: Callable[[], object], node_name: str):
    """make_robot() once; its failure becomes MoveItUnavailable saying what to check. Not retried in this process:
    a failed MoveItPy leaves its node `node_name` spinning (moveit_py's initializer detaches the thread before
    MoveItCpp is made), so a retry would add a second node of that name."""
    try:
        return make_robot()
    except (ImportError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - MoveItPy raises RuntimeError (C++) for a missing robot state or model
        raise MoveItUnavailable(
            f"MoveItPy did not start: {type(e).__name__}: {e}. Check that ur_robot_driver publishes /joint_states "
            "for every joint of the robot description (ur_type, tf_prefix) and that ur_moveit_config and "
            f"ur_description are installed; then start the executor again (MoveItPy is not retried in one process: "
            f"its node '{node_name}' stays behind)") from None


def wait_for_joint_states(node, topic: str, timeout: float, report_every: float = 10.0, spin=None,
                          clock=time.monotonic) -> None:
    """Spin `node` (not yet in an executor) until a sensor_msgs/JointState arrives on `topic`, logging every
    `report_every` s what to check; MoveItUnavailable after `timeout` s (0: wait for ever)."""
    from sensor_msgs.msg import JointState  # noqa: PLC0415

    if spin is None:
        import rclpy  # noqa: PLC0415
        spin = rclpy.spin_once
    received = []
    subscription = node.create_subscription(JointState, topic, received.append, 10)
    log = node.get_logger()
    start = last_report = clock()
    try:
        while not received:
            now = clock()
            if timeout and now - start > timeout:
                raise MoveItUnavailable(f"no robot state on {topic} within {timeout:g} s (moveit.start_timeout): is "
                                        "ur_robot_driver running and connected to the robot (robot_ip, network), or "
                                        "started with use_mock_hardware:=true?")
            if now - last_report >= report_every:
                log.info(f"waiting for the robot state on {topic} ({now - start:.0f} s): is ur_robot_driver running "
                         "and connected to the robot?")
                last_report = now
            spin(node, timeout_sec=0.2)
    finally:
        node.destroy_subscription(subscription)
    log.info(f"robot state received on {topic}")


class ProgramRunningGate:
    """Whether ur_robot_driver's External Control program runs, from io_and_status_controller's
    robot_program_running (std_msgs/Bool; published reliable and transient local, only when the value changes, so
    no message yet means not running)."""

    def __init__(self, node, topic: str, report_every: float = 10.0):
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: PLC0415
        from std_msgs.msg import Bool  # noqa: PLC0415

        self.topic, self.report_every = topic, float(report_every)
        self._logger = node.get_logger()
        self._lock = threading.Condition()
        self._running: bool | None = None
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(Bool, topic, self._on_message, qos)

    def _on_message(self, msg) -> None:
        with self._lock:
            self._running = bool(msg.data)
            self._lock.notify_all()

    @property
    def running(self) -> bool | None:
        """The last value heard (None: nothing yet)."""
        with self._lock:
            return self._running

    def wait(self, stop: threading.Event) -> bool:
        """Block until the program runs or `stop` is set; True if it had to wait. Says what to do meanwhile."""
        waited_since = None
        last_report = -math.inf
        with self._lock:
            while not self._running and not stop.is_set():
                now = time.monotonic()
                if waited_since is None:
                    waited_since = now
                if now - last_report >= self.report_every:
                    heard = ("no message yet: it comes when the program starts (is io_and_status_controller "
                             "active?)" if self._running is None else "false")
                    self._logger.warning(
                        f"waiting for the External Control program before moving the robot ({now - waited_since:.0f}"
                        f" s): {self.topic} is {heard}. On the pendant: load the External Control program, press "
                        "play, and clear any protective stop (or launch with headless_mode:=true)")
                    last_report = now
                self._lock.wait(0.2)
        if waited_since is not None and not stop.is_set():
            self._logger.info(f"the External Control program runs ({self.topic} is true): grasping")
        return waited_since is not None


class MotionFailed(RuntimeError):
    """A planned motion could not be executed (controller, driver, safety stop)."""


# Seconds between a failed motion and asking whether the program still runs (the driver publishes a stop within a
# few control cycles; a second leaves room for a loaded machine).
MOTION_FAILURE_SETTLE = 1.0


def plan_and_execute(robot, component, label: str, log: Callable[[str, str], None], parameters=None,
                     **goal) -> bool:
    """Plan `component` (a PlanningComponent) from the current state to `goal` (set_goal_state's keywords) and
    execute it on `robot` (MoveItPy). False if no plan; MotionFailed if the plan does not execute. `parameters`:
    the plan request parameters (PlanRequestParameters; None: the default plan_request_params, free OMPL)."""
    component.set_start_state_to_current_state()
    component.set_goal_state(**goal)
    plan = component.plan() if parameters is None else component.plan(single_plan_parameters=parameters)
    if not plan:
        log("warning", f"planning {'a straight line ' if parameters is not None else ''}to the {label} pose failed")
        return False
    status = robot.execute(plan.trajectory, controllers=[])
    # moveit_py >= Jazzy returns an ExecutionStatus (truthy on success); older versions return None.
    if status is not None and not bool(status):
        raise MotionFailed(f"executing the {label} trajectory failed: {getattr(status, 'status', status)}")
    return True


def pose_stamped(pose, frame: str) -> PoseStamped:
    """A 4x4 pose (numpy) as a PoseStamped in `frame`."""
    from grasp_core.hand_eye import pose_quaternion  # noqa: PLC0415 - scipy, only for the calibration
    message = PoseStamped()
    message.header.frame_id = frame
    position, orientation = message.pose.position, message.pose.orientation
    position.x, position.y, position.z = (float(v) for v in pose[:3, 3])
    orientation.x, orientation.y, orientation.z, orientation.w = pose_quaternion(pose)
    return message


class MoveItArm:
    """The arm of the hand-eye calibration (grasp_execution.hand_eye_node): `pose_link` to 4x4 poses of
    `base_frame` by free OMPL motions, and where it is now, from MoveItPy's planning scene monitor."""

    def __init__(self, robot, config: MoveItGraspConfig, logger=None):
        self.robot, self.config, self._logger = robot, config, logger
        self.arm = robot.get_planning_component(config.planning_group)

    def _log(self, level: str, message: str) -> None:
        if self._logger is not None:
            getattr(self._logger, level)(message)

    def move_to(self, pose) -> bool:
        """False if no plan reaches `pose`; MotionFailed if the motion fails."""
        return plan_and_execute(self.robot, self.arm, "calibration", self._log,
                                pose_stamped_msg=pose_stamped(pose, self.config.base_frame),
                                pose_link=self.config.pose_link)

    def go_named(self, name: str) -> bool:
        return plan_and_execute(self.robot, self.arm, name, self._log, configuration_name=name)

    def tool_pose(self):
        """base_frame <- pose_link (4x4) in the robot's current state."""
        import numpy as np  # noqa: PLC0415

        with self.robot.get_planning_scene_monitor().read_only() as scene:
            state = scene.current_state
            base = np.asarray(state.get_frame_transform(self.config.base_frame), dtype=np.float64)
            tool = np.asarray(state.get_frame_transform(self.config.pose_link), dtype=np.float64)
        return np.linalg.inv(base) @ tool


class MoveItBackend(GraspBackend):
    """Grasps with a MoveItPy-like `robot` and a ToolIoGripper-like `gripper` (both injectable for tests)."""

    name = "moveit"

    def __init__(self, robot, gripper, config: MoveItGraspConfig = MoveItGraspConfig(), logger=None,
                 linear_parameters=None, program_gate: ProgramRunningGate | None = None,
                 failure_settle_time: float = MOTION_FAILURE_SETTLE):
        """`linear_parameters`: the plan request parameters of straight-line motions (PlanRequestParameters of
        config.linear_plan); made from `robot` on a real install when None and config.linear_plan is set.
        `program_gate`: ProgramRunningGate-like (`wait(stop) -> bool`) that wait_until_ready waits on (None: the
        robot is always ready). `failure_settle_time`: seconds after a failed motion before the gate is asked, so
        that the driver's news of a stopped program has arrived."""
        self.robot, self.gripper, self.config = robot, gripper, config
        self.arm = robot.get_planning_component(config.planning_group)
        self._logger = logger
        self.program_gate, self.failure_settle_time = program_gate, float(failure_settle_time)
        self._checked_ready = False  # wait_until_ready has passed since the start / the last failed motion
        self._motion_failed = False
        if linear_parameters is None and config.linear_plan:
            from moveit.planning import PlanRequestParameters  # noqa: PLC0415 - a real install only
            linear_parameters = PlanRequestParameters(robot, config.linear_plan)
        self.linear_parameters = linear_parameters if config.linear_plan else None
        if self.linear_parameters is None:
            self._log("warning", "moveit.linear_plan is '': the descent and the lift are free OMPL motions, which "
                                 "may sweep the jaw through the objects")

    def _log(self, level: str, message: str) -> None:
        if self._logger is not None:
            getattr(self._logger, level)(message)

    def wait_until_ready(self, stop: threading.Event) -> bool:
        """Before the first grasp and after a failed motion: wait until the External Control program runs."""
        if self.program_gate is None or self._checked_ready:
            return False
        if stop.wait(self.failure_settle_time if self._motion_failed else 0.0):
            return False
        waited = self.program_gate.wait(stop)
        self._checked_ready = not stop.is_set()
        self._motion_failed = False
        return waited

    def _plan_and_execute(self, label: str, straight: bool = False, **goal) -> bool:
        """False if planning fails; raises MotionFailed if the plan does not execute. `straight`: a straight line
        of the tool (Pilz LIN) when linear planning is configured."""
        parameters = self.linear_parameters if straight else None
        return plan_and_execute(self.robot, self.arm, label, self._log, parameters, **goal)

    def _move_to_pose(self, label: str, goal: PoseStamped, straight: bool = False) -> bool:
        return self._plan_and_execute(label, straight, pose_stamped_msg=goal, pose_link=self.config.pose_link)

    def _move_to_named(self, label: str, name: str) -> bool:
        return self._plan_and_execute(label, configuration_name=name)

    def execute_grasp(self, pose: PoseStamped, angle: float) -> GraspOutcome:
        cfg = self.config
        p = pose.pose.position
        if pose.header.frame_id != cfg.base_frame:
            return GraspOutcome.refused(f"grasp pose frame '{pose.header.frame_id}' is not the planning frame "
                                        f"'{cfg.base_frame}'")
        if not all(math.isfinite(v) for v in (p.x, p.y, p.z, angle)):
            return GraspOutcome.refused(f"grasp target is not finite: x={p.x} y={p.y} z={p.z} angle={angle}")
        if not cfg.surface_z_min <= p.z <= cfg.surface_z_max:  # min_grasp_z clamps the jaw; this refuses nonsense
            return GraspOutcome.refused(f"grasp surface height z={p.z:g} is outside [surface_z_min, surface_z_max] = "
                                        f"[{cfg.surface_z_min:g}, {cfg.surface_z_max:g}] (the workspace's z range)")
        goals = grasp_poses(pose, angle, cfg)
        moved = False
        try:
            self.gripper.open()
            # Not planned down to the grasp pose: nothing was touched, so it is not an attempt (not executed).
            if not self._move_to_pose("pre-grasp", goals["pre-grasp"]):
                return GraspOutcome(False, False, GraspFailure.UNREACHABLE, "unplannable: no plan to the pre-grasp "
                                    "pose")
            moved = True
            if not self._move_to_pose("grasp", goals["grasp"], straight=True):
                return self._finish(GraspOutcome(False, False, GraspFailure.UNREACHABLE,
                                                 "unplannable: no plan down to the grasp pose"))
            self.gripper.close()
            if not self._move_to_pose("lift", goals["lift"], straight=True):
                return self._finish(GraspOutcome(True, False, GraspFailure.UNREACHABLE, "no plan up to the lift pose"))
            held, detail = self.gripper.holding()
            if held and cfg.drop_configuration and not self._move_to_named("drop", cfg.drop_configuration):
                detail += "; no plan to the drop pose, released in place"
            outcome = GraspOutcome(True, held, GraspFailure.NONE if held else GraspFailure.NOTHING_GRASPED,
                                   ("grasped: " if held else "nothing held: ") + detail)
            return self._finish(outcome)
        except Exception as e:  # noqa: BLE001 - driver/planner errors: not a grasp outcome to learn from
            message = f"grasp aborted: {type(e).__name__}: {e}"
            self._log("error", message)
            self._after_failure()
            return self._finish(GraspOutcome.refused(message), moved=moved, safe=True)

    def _after_failure(self) -> None:
        """A motion or the gripper failed: ask again whether the program runs before the next grasp."""
        self._motion_failed, self._checked_ready = True, False

    def _finish(self, outcome: GraspOutcome, moved: bool = True, safe: bool = False) -> GraspOutcome:
        """Open the jaw and go home (out of the camera's view); a failure here is added to the message."""
        problems = []
        try:
            self.gripper.open()
        except Exception as e:  # noqa: BLE001
            problems.append(f"could not open the gripper: {e}")
        if moved:
            try:
                if not self._move_to_named("home", self.config.home_configuration):
                    problems.append("no plan home (the arm may block the camera)")
            except Exception as e:  # noqa: BLE001
                problems.append(f"could not go home: {e}")
                self._after_failure()
        if not problems:
            return outcome
        self._log("error" if safe else "warning", "; ".join(problems))
        return GraspOutcome(outcome.executed, outcome.grasp_success, outcome.failure_reason,
                            outcome.message + "; " + "; ".join(problems), outcome.objects_remaining)

    def reset(self) -> ResetOutcome:
        return ResetOutcome(False, "the robot cannot refill a real workspace: put objects back on the table")


# ---------------------------------------------------------------------------------------------- real wiring
@dataclass(frozen=True)
class MoveItBackendConfig:
    """The moveit backend's parameters, declared as `moveit.<name>` by the executor whatever the backend (so they
    are listed); the grasp geometry's defaults are MoveItGraspConfig's."""

    ur_type: str = parameter("ur3", "UR model for the robot description (ur_description's ur.urdf.xacro).")
    kinematics_params_file: str = parameter("", "The robot's calibrated kinematics YAML (as given to "
                                            "ur_robot_driver); empty: ur_description's defaults.")
    config_file: str = parameter("", "moveit_py (MoveItCpp) parameter YAML; empty: grasp_bringup's "
                                 "config/moveit_py_ur3.yaml.")
    node_name: str = parameter("executor_moveit_py", "Name of MoveItPy's internal node.")
    planning_group: str = parameter(MoveItGraspConfig.planning_group, "MoveIt planning group of the arm.")
    pose_link: str = parameter(MoveItGraspConfig.pose_link, "Link whose pose is planned to (the flange).")
    base_frame: str = parameter(MoveItGraspConfig.base_frame, "Planning frame; grasp poses must be in it.")
    tcp_offset: float = parameter(MoveItGraspConfig.tcp_offset, "Flange -> jaw centre distance along the tool z "
                                  "axis, metres.", check=in_range(0.0, 0.5), requirement="0 <= tcp_offset <= 0.5")
    grasp_depth: float = parameter(MoveItGraspConfig.grasp_depth, "Jaw centre this far below the proposed surface "
                                   "height, metres.", check=in_range(0.0, 0.1),
                                   requirement="0 <= grasp_depth <= 0.1")
    min_grasp_z: float = parameter(MoveItGraspConfig.min_grasp_z, "Lowest jaw centre z in base_frame (keeps the "
                                   "fingers off the table).")
    surface_z_min: float = parameter(MoveItGraspConfig.surface_z_min, "Lowest surface height a proposal may have, "
                                     "base_frame (the workspace's z_min); a lower one is refused, not executed.")
    surface_z_max: float = parameter(MoveItGraspConfig.surface_z_max, "Highest surface height a proposal may have, "
                                     "base_frame (the workspace's z_max); a higher one is refused, not executed.")
    approach_height: float = parameter(MoveItGraspConfig.approach_height, "Pre-grasp / lift height above the grasp "
                                       "pose, metres.", check=in_range(0.02, 0.5),
                                       requirement="0.02 <= approach_height <= 0.5")
    jaw_yaw_offset: float = parameter(MoveItGraspConfig.jaw_yaw_offset, "Yaw of the closing axis relative to tool0 "
                                      "x, radians.")
    home_configuration: str = parameter(MoveItGraspConfig.home_configuration, "SRDF named state out of the "
                                        "camera's view.")
    drop_configuration: str = parameter(MoveItGraspConfig.drop_configuration, "SRDF named state to release a held "
                                        "object at ('': in place).")
    gripper_service: str = parameter("/io_and_status_controller/set_io", "ur_msgs/SetIO service of "
                                     "ur_robot_driver.")
    gripper_pin: int = parameter(16, "Digital output switching the gripper (16, 17: tool outputs 0, 1).",
                                 check=in_range(0, 17), requirement="0 <= pin <= 17")
    gripper_close_state: bool = parameter(True, "Output state that closes the jaw.")
    gripper_settle_time: float = parameter(1.0, "Seconds to wait after switching the gripper.",
                                           check=in_range(0.0, 10.0), requirement="0 <= settle <= 10")
    success_check: str = parameter("tool_analog", "How a held object is detected: tool_analog (the RG2's width "
                                   "signal on tool analog input 2, in voltage mode: above grip_voltage = held, "
                                   "VPG's test on a CB3) or digital_input (a grip-detected input).",
                                   check=one_of("tool_analog", "digital_input"),
                                   requirement="tool_analog or digital_input")
    io_states_topic: str = parameter("/io_and_status_controller/io_states", "ur_msgs/IOStates topic "
                                     "(digital_input check).")
    success_input_pin: int = parameter(0, "Digital input that reports a grip (digital_input check).",
                                       check=in_range(0, 17), requirement="0 <= pin <= 17")
    success_input_state: bool = parameter(True, "Input state that means 'object held'.")
    tool_data_topic: str = parameter("/io_and_status_controller/tool_data", "ur_msgs/ToolDataMsg topic (tool_analog "
                                     "check).")
    grip_voltage: float = parameter(0.26, "tool_analog check: a closed jaw whose tool analog input 2 reads more than "
                                    "this many volts holds something (VPG's RG2: 0.26 V; fully closed reads less).",
                                    check=in_range(0.0, 10.0), requirement="0 <= grip_voltage <= 10")
    grip_samples: int = parameter(3, "tool_analog check: consecutive fresh readings that must all exceed "
                                  "grip_voltage (a jaw still closing is not a grip).", check=in_range(1, 100),
                                  requirement="1 <= grip_samples <= 100")
    io_timeout: float = parameter(2.0, "Seconds to wait for SetIO responses and fresh I/O readings.",
                                  check=in_range(0.1, 60.0), requirement="0.1 <= io_timeout <= 60")
    gripper: str = parameter("tool_io", "tool_io (a jaw on a tool digital output) or none (dry run on mock hardware: "
                             "nothing is switched, nothing is held).", check=one_of("tool_io", "none"),
                             requirement="tool_io or none")
    tool_voltage: int = parameter(0, "Tool output voltage set through SetIO (FUN_SET_TOOL_VOLTAGE) at start-up: 0 "
                                  "(leave it), 12 or 24. Works on CB3 and e-Series; the driver's tool_voltage "
                                  "argument acts only with tool communication (e-Series).", check=one_of(0, 12, 24),
                                  requirement="0, 12 or 24")
    linear_plan: str = parameter(MoveItGraspConfig.linear_plan, "Plan request parameters (a namespace of "
                                 "config_file) of the straight-line descent and lift: Pilz LIN. '' = free OMPL "
                                 "motions.")
    table_box: tuple[float, ...] = parameter((-0.312, 0.0, -0.255, 0.6, 0.6), "The table as a collision object in "
                                             "base_frame: [centre x, centre y, top z, size x, size y], metres (a "
                                             "size of 0: no table).", check=lambda v: len(v) == 5,
                                             requirement="5 numbers")
    camera_box: tuple[float, ...] = parameter((-0.312, 0.0, 0.52, 0.12, 0.06, 0.06), "The camera and its mount as "
                                              "a collision object in base_frame: [centre x, y, z, size x, y, z], "
                                              "metres (a size of 0: none).", check=lambda v: len(v) == 6,
                                              requirement="6 numbers")
    gripper_box: tuple[float, ...] = parameter((0.15, 0.06, 0.2), "The gripper as a box attached to pose_link: "
                                               "[size along the closing axis (tool x), size along tool y, length "
                                               "down from the flange], metres (a size of 0: none). Keep the length "
                                               "<= tcp_offset, or the lowest grasps collide with the table.",
                                               check=lambda v: len(v) == 3, requirement="3 numbers")
    joint_states_topic: str = parameter("/joint_states", "The robot state MoveItPy needs; waited for before "
                                        "MoveItPy is made.")
    start_timeout: float = parameter(0.0, "Seconds to wait for joint_states_topic before the executor stops (0: "
                                     "for ever).", check=in_range(0.0, 86400.0), requirement="0 <= start_timeout")
    program_running_topic: str = parameter("/io_and_status_controller/robot_program_running", "std_msgs/Bool of "
                                           "ur_robot_driver: the External Control program runs. Waited for before "
                                           "the first grasp and after a failed motion ('': never, as with mock "
                                           "hardware).")

    def grasp_config(self) -> MoveItGraspConfig:
        return MoveItGraspConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(MoveItGraspConfig)})


def moveit_config_dict(ur_type: str, moveit_py_file: str, kinematics_params_file: str = "") -> dict:
    """MoveItPy parameters from ur_moveit_config (Jazzy) + ur_description + our moveit_py YAML."""
    from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415
    from moveit_configs_utils import MoveItConfigsBuilder  # noqa: PLC0415

    urdf = Path(get_package_share_directory("ur_description")) / "urdf" / "ur.urdf.xacro"
    mappings = {"ur_type": ur_type, "name": "ur"}
    if kinematics_params_file:
        mappings["kinematics_params"] = kinematics_params_file
    return (MoveItConfigsBuilder("ur", package_name="ur_moveit_config")
            .robot_description(file_path=str(urdf), mappings=mappings)
            .robot_description_semantic(file_path="srdf/ur.srdf.xacro", mappings={"name": "ur"})
            .trajectory_execution(file_path="config/moveit_controllers.yaml")
            # Pilz for the straight descent and lift (ur_moveit_config ships its planning and cartesian limits).
            .planning_pipelines(pipelines=["ompl", "pilz_industrial_motion_planner"], default_planning_pipeline="ompl")
            .moveit_cpp(file_path=moveit_py_file)
            .to_dict())


class _LatestMessage:
    """The newest message of a topic, with the monotonic time it arrived."""

    def __init__(self, node, msg_type, topic: str):
        self._lock = threading.Lock()
        self._msg, self._time = None, -math.inf
        node.create_subscription(msg_type, topic, self._on_msg, 10)
        self.topic = topic

    def _on_msg(self, msg) -> None:
        with self._lock:
            self._msg, self._time = msg, time.monotonic()

    def fresh(self, since: float, timeout: float):
        """A message that arrived after `since` (monotonic), waiting up to `timeout` s; `arrival` is then its time."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._msg is not None and self._time > since:
                    self.arrival = self._time
                    return self._msg
            if time.monotonic() > deadline:
                raise TimeoutError(f"no fresh message on {self.topic} within {timeout:.1f} s")
            time.sleep(0.01)


def tool_analog_grip(readings, threshold: float, voltage_range: int) -> tuple[bool, str]:
    """VPG's grip test on the RG2 width signal (tool analog input 2, volts): held when every reading exceeds
    `threshold` (fully closed on nothing reads less). `voltage_range`: the input's ToolDataMsg range (0 current,
    1 voltage); a current-mode input is refused, it says nothing about the jaw."""
    if voltage_range != 1:
        raise RuntimeError("tool analog input 2 is in current mode (ToolDataMsg.analog_input_range2 = "
                           f"{voltage_range}): set it to voltage on the pendant (Installation > General > Tool I/O) "
                           "for the RG2's width signal, or use moveit.success_check digital_input")
    volts = [float(v) for v in readings]
    held = all(v > threshold for v in volts)
    return held, (f"tool analog input 2 = {', '.join(f'{v:.3f}' for v in volts)} V "
                  f"({'above' if held else 'not all above'} {threshold:g} V)")


def make_holding_reader(node, config: MoveItBackendConfig) -> Callable[[], tuple[bool, str]]:
    """holding() for the configured success check, from ur_robot_driver's I/O topics."""
    if config.success_check == "digital_input":
        from ur_msgs.msg import IOStates  # noqa: PLC0415 - only with ur_robot_driver installed

        latest = _LatestMessage(node, IOStates, config.io_states_topic)

        def read() -> tuple[bool, str]:
            msg = latest.fresh(time.monotonic(), config.io_timeout)
            states = {int(d.pin): bool(d.state) for d in msg.digital_in_states}
            if config.success_input_pin not in states:
                raise RuntimeError(f"digital input {config.success_input_pin} is not in {latest.topic}")
            state = states[config.success_input_pin]
            return state == config.success_input_state, f"digital input {config.success_input_pin} = {state}"
        return read

    from ur_msgs.msg import ToolDataMsg  # noqa: PLC0415

    latest = _LatestMessage(node, ToolDataMsg, config.tool_data_topic)

    def read_grip() -> tuple[bool, str]:
        since, readings, voltage_range = time.monotonic(), [], 1
        for _ in range(config.grip_samples):
            msg = latest.fresh(since, config.io_timeout)
            since = latest.arrival
            readings.append(msg.analog_input2)
            voltage_range = int(msg.analog_input_range2)
        return tool_analog_grip(readings, config.grip_voltage, voltage_range)
    return read_grip


def make_set_output(node, service: str, timeout: float) -> Callable[[int, bool], None]:
    """set_output(pin, on) through ur_msgs/SetIO (FUN_SET_DIGITAL_OUT)."""
    from ur_msgs.srv import SetIO  # noqa: PLC0415

    client = node.create_client(SetIO, service)

    def set_output(pin: int, on: bool) -> None:
        request = SetIO.Request(fun=SetIO.Request.FUN_SET_DIGITAL_OUT, pin=int(pin),
                                state=float(SetIO.Request.STATE_ON if on else SetIO.Request.STATE_OFF))
        if not call_service(client, request, timeout, wait_for_server=timeout).success:
            raise RuntimeError(f"{service} refused to set digital output {pin} to {'on' if on else 'off'}")
    return set_output


def make_set_tool_voltage(node, service: str, volts: int, timeout: float) -> Callable[[], None]:
    """set_tool_voltage() through ur_msgs/SetIO (FUN_SET_TOOL_VOLTAGE, state = volts); called from the grasp loop
    (the node is spun by then), before the gripper is first switched."""
    from ur_msgs.srv import SetIO  # noqa: PLC0415

    client = node.create_client(SetIO, service)

    def set_tool_voltage() -> None:
        request = SetIO.Request(fun=SetIO.Request.FUN_SET_TOOL_VOLTAGE, pin=0, state=float(volts))
        if not call_service(client, request, timeout, wait_for_server=timeout).success:
            raise RuntimeError(f"{service} did not set the tool voltage to {volts} V: is ur_robot_driver's "
                               "io_and_status_controller running? (moveit.tool_voltage: 0 leaves it as it is)")
        node.get_logger().info(f"tool voltage set to {volts} V")
    return set_tool_voltage


def check_gripper_clearance(box: SceneBox | None, config: MoveItBackendConfig) -> None:
    """ValueError if the gripper box would reach into the table at the lowest grasp (every such plan would fail)."""
    table = [float(v) for v in config.table_box]
    if box is None or min(table[3:]) <= 0:
        return
    longest = config.min_grasp_z + config.tcp_offset - table[2]
    if box.size[2] > longest:
        raise ValueError(f"gripper_box length {box.size[2]:g} m reaches {box.size[2] - longest:.3f} m into the table "
                         f"(top z {table[2]:g}) at the lowest grasp (min_grasp_z {config.min_grasp_z:g} + tcp_offset "
                         f"{config.tcp_offset:g}): shorten it to at most {longest:.3f} m")


def start_robot(node, config: MoveItBackendConfig, spin=None):
    """MoveItPy for the UR3 with the table, the camera mount and the gripper box in its planning scene, once the
    robot's state arrives. `spin(node, timeout_sec)` lets the robot-state wait hear it (None: rclpy.spin_once,
    for a node no executor spins yet)."""
    from moveit.planning import MoveItPy  # noqa: PLC0415

    try:  # the geometry first: a typo stops the node before anything waits
        boxes = scene_boxes(config.table_box, config.camera_box)
        gripper_shape = gripper_box(config.gripper_box, config.pose_link)
        check_gripper_clearance(gripper_shape, config)
    except ValueError as e:
        raise ParameterError(f"moveit.table_box / camera_box / gripper_box: {e}") from None
    config_file = config.config_file
    if not config_file:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415
        config_file = str(Path(get_package_share_directory("grasp_bringup")) / "config" / "moveit_py_ur3.yaml")
    config_dict = moveit_config_dict(config.ur_type, config_file, config.kinematics_params_file)
    log = node.get_logger()
    wait_for_joint_states(node, config.joint_states_topic, config.start_timeout, spin=spin)
    robot = start_moveit_py(lambda: MoveItPy(node_name=config.node_name, config_dict=config_dict), config.node_name)
    log.info(f"MoveItPy is up (node '{config.node_name}')")
    add_collision_boxes(robot, boxes, config.base_frame)
    if gripper_shape is not None:
        attach_gripper_box(robot, gripper_shape, config.pose_link)
    log.info(f"planning scene: {', '.join(b.name for b in boxes) or 'no'} collision objects in {config.base_frame}"
             + (f", the gripper as a {' x '.join(f'{v:g}' for v in gripper_shape.size)} m box on {config.pose_link}"
                if gripper_shape is not None else ", no gripper box (moveit.gripper_box has a size of 0)"))
    return robot


def program_gate(node, config: MoveItBackendConfig) -> ProgramRunningGate | None:
    if config.program_running_topic:
        return ProgramRunningGate(node, config.program_running_topic)
    node.get_logger().warning("moveit.program_running_topic is '': the robot moves without waiting for the External "
                              "Control program (right for mock hardware only)")
    return None


def make_calibration_arm(node, config: MoveItBackendConfig, spin=None) -> tuple[MoveItArm,
                                                                                 ProgramRunningGate | None]:
    """The hand-eye calibration's arm (grasp_execution.hand_eye_node) and its program-running gate."""
    robot = start_robot(node, config, spin)
    return MoveItArm(robot, config.grasp_config(), node.get_logger()), program_gate(node, config)


def create_moveit_backend(node, config: MoveItBackendConfig) -> MoveItBackend:
    """The real backend: MoveItPy for the UR3 plus the tool-I/O gripper. Needs a full ROS 2 Jazzy install."""
    robot = start_robot(node, config)
    log = node.get_logger()
    if config.gripper == "none":
        log.warning("moveit.gripper is none: the gripper is not switched and no grasp can succeed (dry run)")
        gripper = NoGripper()
    else:
        prepare = (make_set_tool_voltage(node, config.gripper_service, config.tool_voltage, config.io_timeout)
                   if config.tool_voltage else None)
        gripper = ToolIoGripper(make_set_output(node, config.gripper_service, config.io_timeout),
                                make_holding_reader(node, config), config.gripper_pin, config.gripper_close_state,
                                config.gripper_settle_time, prepare=prepare)
        log.info(f"grip check: {config.success_check} ("
                 + (f"{config.tool_data_topic} analog_input2 > {config.grip_voltage:g} V"
                    if config.success_check == "tool_analog"
                    else f"{config.io_states_topic} digital input {config.success_input_pin}") + ")")
    return MoveItBackend(robot, gripper, config.grasp_config(), log, program_gate=program_gate(node, config))
