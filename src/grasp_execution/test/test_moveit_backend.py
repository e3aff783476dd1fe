"""The moveit backend up to the moveit_py seam, against fakes of MoveItPy / PlanningComponent and the tool I/O."""
import math

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 message packages (make test sets them up)")
from geometry_msgs.msg import PoseStamped  # noqa: E402
from grasp_core.grasp_pose import quaternion_to_angle  # noqa: E402
from grasp_interfaces.srv import ExecuteGrasp  # noqa: E402

from grasp_execution.moveit_backend import (MoveItBackend, MoveItGraspConfig, ToolIoGripper,  # noqa: E402
                                            grasp_poses)

CONFIG = MoveItGraspConfig(tcp_offset=0.2, grasp_depth=0.02, min_grasp_z=-0.235, approach_height=0.15)


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

    def plan(self):
        label = self.goal[1]
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
    return MoveItBackend(moveit, gripper, CONFIG), moveit


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
    backend = MoveItBackend(FakeMoveIt(events), gripper, MoveItGraspConfig(drop_configuration="bin"))
    assert backend.execute_grasp(proposal(), 0.0).grasp_success
    names = [e[2] for e in events if e[0] == "goal" and e[1] == "named"]
    assert names == ["bin", "home"]
    # close_state False: the jaw closes with the output off and opens with it on.
    assert outputs == [(17, True), (17, False), (17, True)]
    assert np.all([p == 17 for p, _ in outputs])
