"""The `moveit` backend: a real UR3 (ur_robot_driver) grasps with moveit_py and a gripper on the UR tool I/O.

One grasp, as VPG's real robot does it: open the jaw; plan and execute to the pre-grasp pose (`approach_height`
above the grasp), down to the grasp pose, close the jaw (SetIO on a tool digital output), back up to the lift pose;
read whether something is held (a digital input, or the jaw width from a tool analog input); release it (at
`drop_configuration` if set, else where it is); return to `home_configuration`, out of the camera's view, so the
next camera frame shows the scene. Poses are for `pose_link` (tool0): the jaw centre is `tcp_offset` below it along
the tool z axis, which points down. The descent and the lift are straight lines (Pilz LIN, the `pilz_lin` plan
request parameters of config/moveit_py_ur3.yaml); the approach and the way home are free OMPL motions. The table and
the camera mount are collision objects of the planning scene (`table_box`, `camera_box`).

Start-up (create_moveit_backend): MoveItPy needs the robot's /joint_states, which ur_robot_driver publishes only once
the External Control program runs on the pendant (or in headless mode); until then MoveItPy raises, and the backend
waits and retries (`start_attempts`, `start_retry_delay`) with a log line saying what to check. Then it sets the
tool voltage through SetIO (`tool_voltage`: the driver's own `tool_voltage` argument acts only with tool
communication on e-Series; SetIO works on CB3 too) and adds the collision objects.

The moveit_py, moveit_configs_utils and ur_msgs imports live in `create_moveit_backend` and the readers, so this
module imports (and its logic is tested with fakes of the MoveItPy / PlanningComponent objects) without MoveIt.
On a real Jazzy install, MoveItPy is built from ur_moveit_config:
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


def add_collision_boxes(robot, boxes: list[SceneBox], frame: str, messages=None) -> None:
    """Add the boxes to MoveItPy's planning scene. `messages`: (CollisionObject, SolidPrimitive, Pose) classes
    (moveit_msgs / shape_msgs / geometry_msgs on a real install; fakes in tests)."""
    if messages is None:
        from geometry_msgs.msg import Pose  # noqa: PLC0415
        from moveit_msgs.msg import CollisionObject  # noqa: PLC0415
        from shape_msgs.msg import SolidPrimitive  # noqa: PLC0415
        messages = (CollisionObject, SolidPrimitive, Pose)
    CollisionObject, SolidPrimitive, Pose = messages
    with robot.get_planning_scene_monitor().read_write() as scene:
        for box in boxes:
            obj = CollisionObject()
            obj.header.frame_id = frame
            obj.id = box.name
            primitive = SolidPrimitive()
            primitive.type = SolidPrimitive.BOX
            primitive.dimensions = list(box.size)
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = box.center
            pose.orientation.w = 1.0
            obj.primitives = [primitive]
            obj.primitive_poses = [pose]
            obj.operation = CollisionObject.ADD
            scene.apply_collision_object(obj)
        scene.current_state.update()


class MoveItUnavailable(ParameterError):
    """MoveItPy did not start (no robot state, no controllers): the executor stops with this message."""


def start_moveit_py(make_robot: Callable[[], object], attempts: int, delay: float, logger,
                    sleep=time.sleep):
    """make_robot() until it works: `attempts` tries (0: until it works), `delay` s apart, each failure logged with
    what to check. Raises MoveItUnavailable after the last try."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return make_robot()
        except (ImportError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - MoveItPy raises RuntimeError (C++) for a missing robot state
            what = (f"MoveItPy did not start (try {attempt}{'' if attempts == 0 else f' of {attempts}'}): "
                    f"{type(e).__name__}: {e}. Is ur_robot_driver publishing /joint_states? On the robot the "
                    "External Control program must be running on the pendant (or launch with headless_mode:=true); "
                    "with use_mock_hardware:=true, are the controllers up?")
            if attempts and attempt >= attempts:
                raise MoveItUnavailable(what) from None
            logger.warning(f"{what} Retrying in {delay:g} s.")
            sleep(delay)


class MotionFailed(RuntimeError):
    """A planned motion could not be executed (controller, driver, safety stop)."""


class MoveItBackend(GraspBackend):
    """Grasps with a MoveItPy-like `robot` and a ToolIoGripper-like `gripper` (both injectable for tests)."""

    name = "moveit"

    def __init__(self, robot, gripper, config: MoveItGraspConfig = MoveItGraspConfig(), logger=None,
                 linear_parameters=None):
        """`linear_parameters`: the plan request parameters of straight-line motions (PlanRequestParameters of
        config.linear_plan); made from `robot` on a real install when None and config.linear_plan is set."""
        self.robot, self.gripper, self.config = robot, gripper, config
        self.arm = robot.get_planning_component(config.planning_group)
        self._logger = logger
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

    def _plan_and_execute(self, label: str, straight: bool = False, **goal) -> bool:
        """False if planning fails; raises MotionFailed if the plan does not execute. `straight`: a straight line
        of the tool (Pilz LIN) when linear planning is configured."""
        self.arm.set_start_state_to_current_state()
        self.arm.set_goal_state(**goal)
        if straight and self.linear_parameters is not None:
            plan = self.arm.plan(single_plan_parameters=self.linear_parameters)
        else:
            plan = self.arm.plan()
        if not plan:
            self._log("warning", f"planning {'a straight line ' if straight else ''}to the {label} pose failed")
            return False
        status = self.robot.execute(plan.trajectory, controllers=[])
        # moveit_py >= Jazzy returns an ExecutionStatus (truthy on success); older versions return None.
        if status is not None and not bool(status):
            raise MotionFailed(f"executing the {label} trajectory failed: {getattr(status, 'status', status)}")
        return True

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
            if not self._move_to_pose("pre-grasp", goals["pre-grasp"]):
                return GraspOutcome(True, False, GraspFailure.UNREACHABLE, "no plan to the pre-grasp pose")
            moved = True
            if not self._move_to_pose("grasp", goals["grasp"], straight=True):
                return self._finish(GraspOutcome(True, False, GraspFailure.UNREACHABLE,
                                                 "no plan down to the grasp pose"))
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
            return self._finish(GraspOutcome.refused(message), moved=moved, safe=True)

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
    success_check: str = parameter("digital_input", "How a held object is detected: digital_input (a "
                                   "grip-detected input) or tool_analog (jaw width on tool analog input 2).",
                                   check=one_of("digital_input", "tool_analog"),
                                   requirement="digital_input or tool_analog")
    io_states_topic: str = parameter("/io_and_status_controller/io_states", "ur_msgs/IOStates topic "
                                     "(digital_input check).")
    success_input_pin: int = parameter(0, "Digital input that reports a grip (digital_input check).",
                                       check=in_range(0, 17), requirement="0 <= pin <= 17")
    success_input_state: bool = parameter(True, "Input state that means 'object held'.")
    tool_data_topic: str = parameter("/io_and_status_controller/tool_data", "ur_msgs/ToolDataMsg topic (tool_analog "
                                     "check).")
    width_per_volt: float = parameter(0.011, "Jaw width per volt on the analog input, metres (tool_analog check).")
    width_offset: float = parameter(0.0, "Jaw width at 0 V, metres (tool_analog check).")
    min_width: float = parameter(0.005, "A closed jaw wider than this holds something, metres (tool_analog check).",
                                 check=in_range(0.0, 0.2), requirement="0 <= min_width <= 0.2")
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
    table_box: tuple[float, ...] = parameter((-0.524, 0.0, -0.255, 0.7, 0.7), "The table as a collision object in "
                                             "base_frame: [centre x, centre y, top z, size x, size y], metres (a "
                                             "size of 0: no table).", check=lambda v: len(v) == 5,
                                             requirement="5 numbers")
    camera_box: tuple[float, ...] = parameter((-0.524, 0.0, 0.52, 0.12, 0.06, 0.06), "The camera and its mount as "
                                              "a collision object in base_frame: [centre x, y, z, size x, y, z], "
                                              "metres (a size of 0: none).", check=lambda v: len(v) == 6,
                                              requirement="6 numbers")
    start_attempts: int = parameter(0, "Tries to start MoveItPy (it needs the robot's /joint_states); 0: until it "
                                    "works.", check=in_range(0, 1_000_000), requirement="start_attempts >= 0")
    start_retry_delay: float = parameter(5.0, "Seconds between tries to start MoveItPy.",
                                         check=in_range(0.1, 600.0), requirement="0.1 <= start_retry_delay <= 600")

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
        """A message that arrived after `since` (monotonic), waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._msg is not None and self._time > since:
                    return self._msg
            if time.monotonic() > deadline:
                raise TimeoutError(f"no fresh message on {self.topic} within {timeout:.1f} s")
            time.sleep(0.01)


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

    def read_width() -> tuple[bool, str]:
        msg = latest.fresh(time.monotonic(), config.io_timeout)
        width = float(msg.analog_input2) * config.width_per_volt + config.width_offset
        return width > config.min_width, f"jaw width {1000 * width:.1f} mm (min {1000 * config.min_width:.1f} mm)"
    return read_width


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


def create_moveit_backend(node, config: MoveItBackendConfig) -> MoveItBackend:
    """The real backend: MoveItPy for the UR3 plus the tool-I/O gripper. Needs a full ROS 2 Jazzy install."""
    from moveit.planning import MoveItPy  # noqa: PLC0415

    config_file = config.config_file
    if not config_file:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415
        config_file = str(Path(get_package_share_directory("grasp_bringup")) / "config" / "moveit_py_ur3.yaml")
    config_dict = moveit_config_dict(config.ur_type, config_file, config.kinematics_params_file)
    log = node.get_logger()
    robot = start_moveit_py(lambda: MoveItPy(node_name=config.node_name, config_dict=config_dict),
                            config.start_attempts, config.start_retry_delay, log)
    log.info("MoveItPy is up")
    try:
        boxes = scene_boxes(config.table_box, config.camera_box)
    except ValueError as e:
        raise ParameterError(f"moveit.table_box / moveit.camera_box: {e}") from None
    add_collision_boxes(robot, boxes, config.base_frame)
    log.info(f"planning scene: {', '.join(b.name for b in boxes) or 'no'} collision objects in {config.base_frame}")
    if config.gripper == "none":
        log.warning("moveit.gripper is none: the gripper is not switched and no grasp can succeed (dry run)")
        gripper = NoGripper()
    else:
        prepare = (make_set_tool_voltage(node, config.gripper_service, config.tool_voltage, config.io_timeout)
                   if config.tool_voltage else None)
        gripper = ToolIoGripper(make_set_output(node, config.gripper_service, config.io_timeout),
                                make_holding_reader(node, config), config.gripper_pin, config.gripper_close_state,
                                config.gripper_settle_time, prepare=prepare)
    return MoveItBackend(robot, gripper, config.grasp_config(), log)
