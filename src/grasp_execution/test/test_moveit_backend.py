"""The moveit backend up to the moveit_py seam, against fakes of MoveItPy / PlanningComponent and the tool I/O; the
robot-state wait and the External Control program gate against real rclpy publishers."""
import math
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 message packages (make test sets them up)")
from geometry_msgs.msg import PoseStamped  # noqa: E402
from grasp_core.grasp_pose import quaternion_to_angle  # noqa: E402
from grasp_interfaces.srv import ExecuteGrasp  # noqa: E402

from grasp_execution.moveit_backend import (GRIPPER_TOUCH_LINKS, MoveItBackend, MoveItBackendConfig,  # noqa: E402
                                            MoveItGraspConfig, MoveItUnavailable, NoGripper, ProgramRunningGate,
                                            SceneBox, ToolIoGripper, add_collision_boxes, attach_gripper_box,
                                            check_gripper_clearance, grasp_poses, gripper_box, scene_boxes,
                                            start_moveit_py, tool_analog_grip, wait_for_joint_states)

CONFIG = MoveItGraspConfig(tcp_offset=0.2, grasp_depth=0.02, min_grasp_z=-0.235, approach_height=0.15)
LINEAR = object()  # stands in for PlanRequestParameters(robot, "pilz_lin")


class FakePlan:
    def __init__(self, trajectory):
        self.trajectory = trajectory


class FakeStatus:
    def __init__(self, ok):
        self.ok, self.status = ok, "SUCCEEDED" if ok else "ABORTED"

    def __bool__(self):
        return self.ok


class FakeMoveIt:
    """Records every call in `events`; plans fail for the goal labels in `unplannable`."""

    def __init__(self, events, unplannable=(), failing_execution=(), raise_on=()):
        self.events, self.unplannable = events, unplannable
        self.failing_execution, self.raise_on = failing_execution, raise_on
        self.goal = None
        self.groups = []
        self.straight = []  # goal labels planned with the straight-line (Pilz LIN) parameters

    def get_planning_component(self, name):
        self.groups.append(name)
        return self

    # PlanningComponent
    def set_start_state_to_current_state(self):
        self.events.append(("start_state",))

    def set_goal_state(self, **kwargs):
        if "pose_stamped_msg" in kwargs:
            z = round(kwargs["pose_stamped_msg"].pose.position.z, 4)
            self.goal = ("pose", z, kwargs["pose_link"], kwargs["pose_stamped_msg"])
        else:
            self.goal = ("named", kwargs["configuration_name"])
        self.events.append(("goal",) + self.goal[:3])

    def plan(self, single_plan_parameters=None):
        label = self.goal[1]
        if single_plan_parameters is not None:
            assert single_plan_parameters is LINEAR
            self.straight.append(label)
        if label in self.raise_on:
            raise RuntimeError("planning scene monitor died")
        self.events.append(("plan", label))
        return None if label in self.unplannable else FakePlan(f"trajectory to {label}")

    # MoveItPy
    def execute(self, trajectory, controllers):
        assert controllers == []
        self.events.append(("execute", trajectory))
        return FakeStatus(trajectory.split()[-1] not in {str(x) for x in self.failing_execution})


def make_backend(events, held=True, **moveit_kw):
    outputs = []

    def set_output(pin, on):
        events.append(("io", pin, on))
        outputs.append((pin, on))

    def read_holding():
        events.append(("read",))
        return held, "digital input 0 = True" if held else "digital input 0 = False"

    gripper = ToolIoGripper(set_output, read_holding, pin=16, close_state=True, settle_time=0.0)
    moveit = FakeMoveIt(events, **moveit_kw)
    return MoveItBackend(moveit, gripper, CONFIG, linear_parameters=LINEAR), moveit


def proposal(x=-0.5, y=0.05, z=-0.2, frame="base_link"):
    pose = PoseStamped()
    pose.header.frame_id = frame
    pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = x, y, z
    return pose


def condensed(events):
    """Events without the start-state resets, goals as ('goal', z or name)."""
    out = []
    for e in events:
        if e[0] == "goal":
            out.append(("goal", e[2]))  # the pose goal's z, or the named state
        elif e[0] != "start_state":
            out.append(e)
    return out


def test_grasp_poses_geometry():
    goals = grasp_poses(proposal(z=-0.2), 3 * math.pi / 4, CONFIG)
    jaw_z = -0.2 - 0.02
    assert [round(g.pose.position.z, 6) for g in goals.values()] == [round(jaw_z + 0.2 + 0.15, 6),
                                                                     round(jaw_z + 0.2, 6),
                                                                     round(jaw_z + 0.2 + 0.15, 6)]
    for g in goals.values():
        assert g.header.frame_id == "base_link" and (g.pose.position.x, g.pose.position.y) == (-0.5, 0.05)
        q = g.pose.orientation
        # Tool z down; the symmetric jaw's yaw 3pi/4 is folded to -pi/4 (same grasp, smaller wrist turn).
        assert quaternion_to_angle((q.x, q.y, q.z, q.w)) == pytest.approx(2 * math.pi - math.pi / 4)
    # The jaw never goes below min_grasp_z, however low the proposal.
    low = grasp_poses(proposal(z=-0.9), 0.0, CONFIG)["grasp"]
    assert low.pose.position.z == pytest.approx(CONFIG.min_grasp_z + CONFIG.tcp_offset)


def test_successful_grasp_moves_and_switches_the_gripper_in_order():
    events = []
    backend, moveit = make_backend(events, held=True)
    outcome = backend.execute_grasp(proposal(z=-0.2), 0.3)
    assert outcome.executed and outcome.grasp_success and outcome.failure_reason == ExecuteGrasp.Response.REASON_NONE
    assert outcome.objects_remaining is None and "digital input 0 = True" in outcome.message
    pre, grasp = round(-0.22 + 0.2 + 0.15, 4), round(-0.22 + 0.2, 4)
    assert condensed(events) == [
        ("io", 16, False),                                          # open
        ("goal", pre), ("plan", pre), ("execute", f"trajectory to {pre}"),      # pre-grasp
        ("goal", grasp), ("plan", grasp), ("execute", f"trajectory to {grasp}"),  # down
        ("io", 16, True),                                           # close
        ("goal", pre), ("plan", pre), ("execute", f"trajectory to {pre}"),      # lift
        ("read",),                                                  # held?
        ("io", 16, False),                                          # release
        ("goal", "home"), ("plan", "home"), ("execute", "trajectory to home"),  # out of the camera's view
    ]
    assert moveit.groups == ["ur_manipulator"]
    assert moveit.straight == [grasp, pre]  # the descent and the lift are straight lines; approach and home free
    # Every pose goal is for tool0 and every plan starts from the current state.
    assert all(e[3] == "tool0" for e in events if e[0] == "goal" and e[1] == "pose")
    assert sum(e[0] == "start_state" for e in events) == 4


def test_empty_jaw_is_a_failed_grasp():
    events = []
    backend, _ = make_backend(events, held=False)
    outcome = backend.execute_grasp(proposal(), 0.0)
    assert outcome.executed and not outcome.grasp_success
    assert outcome.failure_reason == ExecuteGrasp.Response.REASON_NOTHING_GRASPED
    assert condensed(events)[-4:] == [("io", 16, False), ("goal", "home"), ("plan", "home"),
                                      ("execute", "trajectory to home")]


def test_unplannable_grasps_are_not_executed_attempts():
    """Issue 24: a proposal the arm cannot plan to touched nothing, so it is no experience (not executed)."""
    pre, grasp, lift = round(-0.22 + 0.35, 4), round(-0.22 + 0.2, 4), round(-0.22 + 0.35, 4)
    # No plan to the pre-grasp pose: nothing moved, no trip home.
    events = []
    backend, _ = make_backend(events, unplannable=(pre,))
    outcome = backend.execute_grasp(proposal(), 0.0)
    assert not outcome.executed and not outcome.grasp_success
    assert outcome.failure_reason == ExecuteGrasp.Response.REASON_UNREACHABLE and "pre-grasp" in outcome.message
    assert not any(e[0] == "execute" for e in events) and ("io", 16, True) not in events
    # No plan down: the arm is above the scene, so it opens and goes home; the jaw never closed.
    events = []
    backend, _ = make_backend(events, unplannable=(grasp,))
    outcome = backend.execute_grasp(proposal(), 0.0)
    assert not outcome.executed and outcome.failure_reason == ExecuteGrasp.Response.REASON_UNREACHABLE
    assert "unplannable" in outcome.message and "grasp pose" in outcome.message
    assert condensed(events)[-3:] == [("goal", "home"), ("plan", "home"), ("execute", "trajectory to home")]
    assert ("io", 16, True) not in events
    # The jaw closed but no way up: that grasp happened (executed), it failed.
    events = []
    backend, moveit = make_backend(events)
    moveit.unplannable = ()
    plans = []

    def plan(single_plan_parameters=None):  # the second plan to `lift`'s height (the lift itself) fails
        label = moveit.goal[1]
        plans.append(label)
        return None if label == lift and plans.count(lift) == 2 else FakePlan(f"trajectory to {label}")
    moveit.plan = plan
    outcome = backend.execute_grasp(proposal(), 0.0)
    assert outcome.executed and not outcome.grasp_success and "lift" in outcome.message


def test_execution_errors_and_exceptions_are_not_experiences():
    grasp = round(-0.22 + 0.2, 4)
    events = []
    backend, _ = make_backend(events, failing_execution=(grasp,))
    outcome = backend.execute_grasp(proposal(), 0.0)
    assert not outcome.executed and "ABORTED" in outcome.message
    assert condensed(events)[-3:] == [("goal", "home"), ("plan", "home"), ("execute", "trajectory to home")]
    events = []
    backend, _ = make_backend(events, raise_on=("home",))
    outcome = backend.execute_grasp(proposal(), 0.0)
    # The grasp itself worked; going home raised: the outcome says so instead of crashing.
    assert outcome.executed and outcome.grasp_success and "could not go home" in outcome.message


@pytest.mark.parametrize("pose,angle,fragment", [
    (proposal(frame="world"), 0.0, "not the planning frame"),
    (proposal(x=math.nan), 0.0, "not finite"),
    (proposal(), math.inf, "not finite"),
    (proposal(z=-5.0), 0.0, "outside [surface_z_min, surface_z_max]"),  # issue 11: was clamped to the table
    (proposal(z=1e30), 0.0, "outside [surface_z_min, surface_z_max]"),  # issue 11: was planned for
    (proposal(z=0.5), 0.0, "outside [surface_z_min, surface_z_max]"),
])
def test_bad_targets_are_refused_before_anything_moves(pose, angle, fragment):
    events = []
    backend, _ = make_backend(events)
    outcome = backend.execute_grasp(pose, angle)
    assert not outcome.executed and fragment in outcome.message
    assert outcome.failure_reason == ExecuteGrasp.Response.REASON_INVALID_TARGET and events == []


def test_reset_asks_for_a_person():
    backend, _ = make_backend([])
    result = backend.reset()
    assert not result.success and "put objects back" in result.message


def test_drop_configuration_is_visited_with_a_held_object():
    events = []
    outputs = []
    gripper = ToolIoGripper(lambda pin, on: outputs.append((pin, on)) or events.append(("io", pin, on)),
                            lambda: (True, "held"), pin=17, close_state=False, settle_time=0.0)
    backend = MoveItBackend(FakeMoveIt(events), gripper, MoveItGraspConfig(drop_configuration="bin"),
                            linear_parameters=LINEAR)
    assert backend.execute_grasp(proposal(), 0.0).grasp_success
    names = [e[2] for e in events if e[0] == "goal" and e[1] == "named"]
    assert names == ["bin", "home"]
    # close_state False: the jaw closes with the output off and opens with it on.
    assert outputs == [(17, True), (17, False), (17, True)]
    assert np.all([p == 17 for p, _ in outputs])


class Logger:
    def __init__(self):
        self.lines = []

    def warning(self, message):
        self.lines.append(("warning", message))

    def info(self, message):
        self.lines.append(("info", message))


def test_free_descent_only_when_asked_and_then_said():
    log = Logger()
    moveit = FakeMoveIt([])
    backend = MoveItBackend(moveit, NoGripper(), MoveItGraspConfig(linear_plan=""), log)
    assert backend.linear_parameters is None and "free OMPL" in log.lines[0][1]
    outcome = backend.execute_grasp(proposal(), 0.0)
    assert outcome.executed and not outcome.grasp_success and "dry run" in outcome.message
    assert moveit.straight == []


def test_moveit_py_is_made_once_and_a_failure_says_what_to_check():
    tries = []

    def make_robot():
        tries.append(1)
        raise RuntimeError("Unable to configure planning scene monitor")

    assert start_moveit_py(lambda: "robot", "executor_moveit_py") == "robot"
    with pytest.raises(MoveItUnavailable, match="planning scene monitor.*/joint_states.*'executor_moveit_py' stays"):
        start_moveit_py(make_robot, "executor_moveit_py")
    assert tries == [1]  # not retried: a failed MoveItPy leaves its node behind
    with pytest.raises(ImportError):
        start_moveit_py(lambda: __import__("moveit_not_installed_here"), "n")


class Messages:
    """Stands in for moveit_msgs / shape_msgs (not installable here)."""

    class Box:
        BOX, ADD = 1, 0

        def __init__(self):
            self.header = type("Header", (), {})()

    class Attached:
        def __init__(self):
            self.link_name, self.object, self.touch_links = "", None, []


class FakeMonitor:
    """MoveItPy's planning scene monitor: process_* apply a message and publish the scene (True: applied)."""

    def __init__(self, refuse=()):
        self.objects, self.attached, self.refuse = [], [], refuse

    def get_planning_scene_monitor(self):
        return self

    def process_collision_object(self, obj):
        self.objects.append(obj)
        return obj.id not in self.refuse

    def process_attached_collision_object(self, attached):
        self.attached.append(attached)
        return attached.object.id not in self.refuse


def test_table_camera_mount_and_gripper_are_in_the_planning_scene():
    from geometry_msgs.msg import Pose
    messages = (Messages.Box, Messages.Box, Pose, Messages.Attached)
    boxes = scene_boxes([-0.5, 0.0, -0.255, 0.7, 0.6], [-0.5, 0.0, 0.52, 0.12, 0.06, 0.06])
    assert boxes == [SceneBox("table", (-0.5, 0.0, -0.28), (0.7, 0.6, 0.05)),
                     SceneBox("camera_mount", (-0.5, 0.0, 0.52), (0.12, 0.06, 0.06))]
    assert [b.name for b in scene_boxes([0, 0, 0, 0, 0], [0, 0, 0.5, 0.1, 0.1, 0.1])] == ["camera_mount"]
    with pytest.raises(ValueError, match="5 numbers"):
        scene_boxes([0, 0, 0], [0] * 6)
    robot = FakeMonitor()
    add_collision_boxes(robot, boxes, "base_link", messages=messages)
    assert [o.id for o in robot.objects] == ["table", "camera_mount"]
    table = robot.objects[0]
    assert table.header.frame_id == "base_link" and table.operation == Messages.Box.ADD
    assert table.primitives[0].type == Messages.Box.BOX and table.primitives[0].dimensions == [0.7, 0.6, 0.05]
    assert table.primitive_poses[0].position.z == pytest.approx(-0.28) and table.primitive_poses[0].orientation.w == 1
    with pytest.raises(RuntimeError, match="refused the collision object 'table'"):
        add_collision_boxes(FakeMonitor(refuse=("table",)), boxes, "base_link", messages=messages)
    # The gripper: a box hanging from tool0 (z down), attached, allowed to touch the links it is mounted on.
    box = gripper_box([0.15, 0.06, 0.2], "tool0")
    assert box == SceneBox("gripper_on_tool0", (0.0, 0.0, 0.1), (0.15, 0.06, 0.2))
    assert gripper_box([0.15, 0.0, 0.2], "tool0") is None
    with pytest.raises(ValueError, match="3 numbers"):
        gripper_box([0.1, 0.1], "tool0")
    attach_gripper_box(robot, box, "tool0", messages=messages)
    (attached,) = robot.attached
    assert attached.link_name == "tool0" and attached.object.header.frame_id == "tool0"
    assert attached.object.primitive_poses[0].position.z == pytest.approx(0.1)
    assert attached.object.primitives[0].dimensions == [0.15, 0.06, 0.2]
    assert set(attached.touch_links) == set(GRIPPER_TOUCH_LINKS) >= {"tool0", "wrist_3_link"}
    with pytest.raises(RuntimeError, match="attach the gripper box"):
        attach_gripper_box(FakeMonitor(refuse=("gripper_on_tool0",)), box, "tool0", messages=messages)


def test_a_gripper_box_that_would_reach_into_the_table_is_refused():
    config = MoveItBackendConfig()  # table top -0.255, lowest jaw centre -0.235, tcp_offset 0.2: at most 0.22 m
    check_gripper_clearance(gripper_box(config.gripper_box, "tool0"), config)
    check_gripper_clearance(gripper_box([0.15, 0.06, 0.22], "tool0"), config)
    with pytest.raises(ValueError, match="into the table.*at most 0.220 m"):
        check_gripper_clearance(gripper_box([0.15, 0.06, 0.25], "tool0"), config)
    no_table = MoveItBackendConfig(table_box=(0.0, 0.0, 0.0, 0.0, 0.0))
    check_gripper_clearance(gripper_box([0.15, 0.06, 0.5], "tool0"), no_table)


def test_grip_from_the_rg2_width_signal_as_vpg():
    """VPG's robot.py on a CB3 with an RG2: tool analog input 2 above 0.26 V after closing = something held."""
    held, detail = tool_analog_grip([0.41, 0.40, 0.41], 0.26, voltage_range=1)
    assert held and "0.410, 0.400, 0.410 V" in detail and "above 0.26 V" in detail
    assert not tool_analog_grip([0.05, 0.04, 0.04], 0.26, 1)[0]  # fully closed on nothing
    assert not tool_analog_grip([0.41, 0.20, 0.10], 0.26, 1)[0]  # still closing: not a grip
    assert tool_analog_grip([0.5], 0.3, 1)[0] and not tool_analog_grip([0.5], 0.6, 1)[0]  # the threshold decides
    with pytest.raises(RuntimeError, match="current mode.*voltage on the pendant"):
        tool_analog_grip([0.41], 0.26, voltage_range=0)
    assert MoveItBackendConfig().success_check == "tool_analog" and MoveItBackendConfig().grip_voltage == 0.26


class FakeGate:
    def __init__(self):
        self.waits = 0

    def wait(self, stop):
        self.waits += 1
        return True


def test_the_robot_is_made_ready_before_the_first_grasp_and_after_a_failed_motion():
    events = []
    backend, moveit = make_backend(events, failing_execution=(round(-0.22 + 0.2, 4),))
    gate = FakeGate()
    backend.program_gate, backend.failure_settle_time = gate, 0.01
    stop = threading.Event()
    assert backend.wait_until_ready(stop) and gate.waits == 1  # before the first grasp
    assert not backend.wait_until_ready(stop) and gate.waits == 1  # and not again while all goes well
    backend.execute_grasp(proposal(), 0.0)  # the descent fails to execute (e.g. the program stopped)
    assert backend.wait_until_ready(stop) and gate.waits == 2
    stop.set()
    backend._after_failure()
    assert not backend.wait_until_ready(stop) and gate.waits == 2  # stopping: no wait
    assert not make_backend([])[0].wait_until_ready(threading.Event())  # no gate: always ready


@pytest.fixture
def ros_node():
    import rclpy
    rclpy.init()
    node = rclpy.create_node("moveit_backend_test")
    helper = rclpy.create_node("driver_stand_in")
    try:
        yield node, helper
    finally:
        node.destroy_node()
        helper.destroy_node()
        rclpy.shutdown()


def test_program_running_gate_hears_the_drivers_latched_bool(ros_node):
    """robot_program_running is published reliable + transient local, only on change: a late subscriber still
    hears the last value, and no message means not running."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Bool

    node, driver = ros_node
    topic = "/io_and_status_controller/robot_program_running"
    # The driver's profile (ur_controllers gpio_controller.cpp: SystemDefaultsQoS, transient_local, reliable).
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    publisher = driver.create_publisher(Bool, topic, latched)
    publisher.publish(Bool(data=True))  # before the gate exists
    gate = ProgramRunningGate(node, topic, report_every=0.5)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(driver)
    deadline = time.monotonic() + 30.0
    while gate.running is None:
        assert time.monotonic() < deadline, "the latched value never arrived"
        executor.spin_once(timeout_sec=0.05)
    assert gate.running is True and not gate.wait(threading.Event())
    publisher.publish(Bool(data=False))  # program stopped (protective stop, pendant)
    while gate.running:
        assert time.monotonic() < deadline
        executor.spin_once(timeout_sec=0.05)
    stop, result = threading.Event(), []
    waiter = threading.Thread(target=lambda: result.append(gate.wait(stop)))
    waiter.start()
    for _ in range(10):
        executor.spin_once(timeout_sec=0.05)
    assert waiter.is_alive()  # waits while the program does not run
    publisher.publish(Bool(data=True))
    while waiter.is_alive():
        assert time.monotonic() < deadline, "the gate did not open"
        executor.spin_once(timeout_sec=0.05)
    assert result == [True]
    # Nothing heard at all (the driver publishes only changes from false): not running; stop ends the wait.
    silent = ProgramRunningGate(node, "/nobody/robot_program_running", report_every=0.1)
    assert silent.running is None
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    assert silent.wait(stop) is True and silent.running is None
    executor.shutdown()
    assert rclpy.ok()


def test_the_robot_state_is_waited_for_before_moveit_py(ros_node):
    from sensor_msgs.msg import JointState

    node, driver = ros_node
    publisher = driver.create_publisher(JointState, "/joint_states", 10)
    timer = driver.create_timer(0.05, lambda: publisher.publish(JointState(name=["shoulder_pan_joint"],
                                                                           position=[0.0])))
    from rclpy.executors import SingleThreadedExecutor
    driver_executor = SingleThreadedExecutor()
    driver_executor.add_node(driver)
    spinning = threading.Event()
    spinning.set()

    def spin_driver():
        while spinning.is_set():
            driver_executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin_driver)
    thread.start()
    try:
        wait_for_joint_states(node, "/joint_states", timeout=60.0)  # returns once a message came
        with pytest.raises(MoveItUnavailable, match="no robot state on /nobody/joint_states within 0.3 s"):
            wait_for_joint_states(node, "/nobody/joint_states", timeout=0.3)
    finally:
        spinning.clear()
        thread.join()
        driver.destroy_timer(timer)
        driver_executor.shutdown()
    assert list(node.subscriptions) == []  # the waits leave no subscription behind


def test_tool_voltage_is_set_once_before_the_gripper_first_moves():
    events = []
    prepared = []
    gripper = ToolIoGripper(lambda pin, on: events.append(("io", pin, on)), lambda: (False, "-"), pin=16,
                            settle_time=0.0, prepare=lambda: prepared.append(24) or events.append(("voltage", 24)))
    gripper.open()
    gripper.close()
    gripper.open()
    assert events[0] == ("voltage", 24) and prepared == [24] and len(events) == 4


def test_the_calibration_arm_goes_to_4x4_poses_and_reports_the_tool_pose():
    from grasp_core.hand_eye import transform
    from scipy.spatial.transform import Rotation

    from grasp_execution.moveit_backend import MoveItArm, pose_stamped

    target = transform(Rotation.from_euler("xyz", [10.0, -5.0, 30.0], degrees=True).as_matrix(), [-0.3, 0.05, 0.1])
    message = pose_stamped(target, "base_link")
    q = message.pose.orientation
    assert message.header.frame_id == "base_link" and message.pose.position.x == pytest.approx(-0.3)
    assert np.allclose(Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix(), target[:3, :3])

    base_in_model = transform(np.eye(3), [0.0, 0.0, 0.0])
    tool_in_model = target

    class State:
        def get_frame_transform(self, frame):
            return {"base_link": base_in_model, "tool0": tool_in_model}[frame]

    class Scene:
        current_state = State()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    events = []
    moveit = FakeMoveIt(events)
    moveit.get_planning_scene_monitor = lambda: type("Monitor", (), {"read_only": lambda self: Scene()})()
    arm = MoveItArm(moveit, MoveItGraspConfig())
    assert arm.move_to(target) and ("goal", "pose", 0.1, "tool0") in events  # tool0 to the pose, then executed
    assert ("execute", "trajectory to 0.1") in events
    assert arm.go_named("home") and ("goal", "named", "home") in events[-3:]
    assert np.allclose(arm.tool_pose(), target)
