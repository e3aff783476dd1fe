"""The moveit backend up to the moveit_py seam, against fakes of MoveItPy / PlanningComponent and the tool I/O."""
import math

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 message packages (make test sets them up)")
from geometry_msgs.msg import PoseStamped  # noqa: E402
from grasp_core.grasp_pose import quaternion_to_angle  # noqa: E402
from grasp_interfaces.srv import ExecuteGrasp  # noqa: E402

from grasp_execution.moveit_backend import (MoveItBackend, MoveItGraspConfig, MoveItUnavailable,  # noqa: E402
                                            NoGripper, SceneBox, ToolIoGripper, add_collision_boxes, grasp_poses,
                                            scene_boxes, start_moveit_py)

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


def test_planning_failures_are_failed_outcomes_not_crashes():
    pre, grasp = round(-0.22 + 0.35, 4), round(-0.22 + 0.2, 4)
    # No plan to the pre-grasp pose: nothing moved, an unreachable (executed, failed) grasp, no trip home.
    events = []
    backend, _ = make_backend(events, unplannable=(pre,))
    outcome = backend.execute_grasp(proposal(), 0.0)
    assert outcome.executed and not outcome.grasp_success
    assert outcome.failure_reason == ExecuteGrasp.Response.REASON_UNREACHABLE and "pre-grasp" in outcome.message
    assert not any(e[0] == "execute" for e in events) and ("io", 16, True) not in events
    # No plan down: the arm is above the scene, so it opens and goes home.
    events = []
    backend, _ = make_backend(events, unplannable=(grasp,))
    outcome = backend.execute_grasp(proposal(), 0.0)
    assert outcome.failure_reason == ExecuteGrasp.Response.REASON_UNREACHABLE and "grasp pose" in outcome.message
    assert condensed(events)[-3:] == [("goal", "home"), ("plan", "home"), ("execute", "trajectory to home")]
    assert ("io", 16, True) not in events


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


def test_moveit_py_start_is_retried_with_what_to_check():
    log, slept, tries = Logger(), [], []

    def make_robot():
        tries.append(1)
        if len(tries) < 3:
            raise RuntimeError("Didn't receive robot state (joint angles) with recent timestamp within 10 seconds")
        return "robot"

    assert start_moveit_py(make_robot, attempts=0, delay=2.5, logger=log, sleep=slept.append) == "robot"
    assert slept == [2.5, 2.5] and len(log.lines) == 2
    assert all("External Control" in m and "/joint_states" in m and "try" in m for _, m in log.lines)
    tries.clear()
    with pytest.raises(MoveItUnavailable, match="try 2 of 2.*External Control"):
        start_moveit_py(make_robot, attempts=2, delay=1.0, logger=log, sleep=slept.append)
    with pytest.raises(ImportError):
        start_moveit_py(lambda: __import__("moveit_not_installed_here"), 0, 1.0, log, sleep=slept.append)


def test_table_and_camera_mount_are_collision_objects():
    boxes = scene_boxes([-0.5, 0.0, -0.255, 0.7, 0.6], [-0.5, 0.0, 0.52, 0.12, 0.06, 0.06])
    assert boxes == [SceneBox("table", (-0.5, 0.0, -0.28), (0.7, 0.6, 0.05)),
                     SceneBox("camera_mount", (-0.5, 0.0, 0.52), (0.12, 0.06, 0.06))]
    assert [b.name for b in scene_boxes([0, 0, 0, 0, 0], [0, 0, 0.5, 0.1, 0.1, 0.1])] == ["camera_mount"]
    with pytest.raises(ValueError, match="5 numbers"):
        scene_boxes([0, 0, 0], [0] * 6)

    class Msg:  # stands in for moveit_msgs / shape_msgs (not installable here)
        BOX, ADD = 1, 0

        def __init__(self):
            self.header = type("Header", (), {})()

    class Scene:
        def __init__(self):
            self.applied, self.updated = [], 0
            self.current_state = self

        def apply_collision_object(self, obj):
            self.applied.append(obj)

        def update(self):
            self.updated += 1

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class Robot:
        def __init__(self):
            self.scene = Scene()

        def get_planning_scene_monitor(self):
            return self

        def read_write(self):
            return self.scene

    from geometry_msgs.msg import Pose
    robot = Robot()
    add_collision_boxes(robot, boxes, "base_link", messages=(Msg, Msg, Pose))
    applied = robot.scene.applied
    assert [o.id for o in applied] == ["table", "camera_mount"] and robot.scene.updated == 1
    table = applied[0]
    assert table.header.frame_id == "base_link" and table.operation == Msg.ADD
    assert table.primitives[0].type == Msg.BOX and table.primitives[0].dimensions == [0.7, 0.6, 0.05]
    assert table.primitive_poses[0].position.z == pytest.approx(-0.28) and table.primitive_poses[0].orientation.w == 1


def test_tool_voltage_is_set_once_before_the_gripper_first_moves():
    events = []
    prepared = []
    gripper = ToolIoGripper(lambda pin, on: events.append(("io", pin, on)), lambda: (False, "-"), pin=16,
                            settle_time=0.0, prepare=lambda: prepared.append(24) or events.append(("voltage", 24)))
    gripper.open()
    gripper.close()
    gripper.open()
    assert events[0] == ("voltage", 24) and prepared == [24] and len(events) == 4
