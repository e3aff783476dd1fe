"""executor_node against the real sim and heightmap nodes over DDS, with a scripted propose_grasp stub."""
import csv
import math
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_core.attempts import read_attempts  # noqa: E402
from grasp_core.exploration import ExplorationConfig, epsilon_at  # noqa: E402
from grasp_interfaces.msg import GraspExperience  # noqa: E402
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402
from grasp_ros.conversions import msg_to_heightmap, stamp_ns  # noqa: E402
from grasp_ros.params import ParameterError  # noqa: E402
from grasp_ros.qos import EXPERIENCE_QOS  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from grasp_execution.executor_node import ExecutorNode  # noqa: E402
from grasp_perception.heightmap_node import HeightmapNode  # noqa: E402
from grasp_sim.sim_node import SimNode  # noqa: E402

pytestmark = pytest.mark.ros

CALIBRATION = Path(__file__).resolve().parents[3] / "config" / "ur5_sim_calibration.yaml"


class ScriptedProposer:
    """propose_grasp stub: each call follows the next step of `script` (the last step repeats)."""

    def __init__(self, node, script):
        self.script, self.requests = script, []
        node.create_service(ProposeGrasp, "propose_grasp", self.on_request)

    def on_request(self, request, response):
        step = self.script[min(len(self.requests), len(self.script) - 1)]
        self.requests.append(request)
        if step == "refuse":
            response.success, response.message = False, "stub: no model yet"
            return response
        _, depth, ws = msg_to_heightmap(request.heightmap)
        h, w = depth.shape
        if step == "corner":  # nothing there: a guaranteed miss
            u, v = 4, h - 5
        else:  # "tallest" (the object), or "outside" (moved out of the workspace below)
            v, u = np.unravel_index(np.argmax(depth), depth.shape)
        x, y, z = ws.pixel_to_point(u, v, float(depth[v, u]))
        if step == "outside":
            x = ws.x_max + 0.3
        rotation = 4
        response.success, response.message = True, f"stub {step}"
        response.pose.header = request.heightmap.header
        response.pose.pose.position.x, response.pose.pose.position.y, response.pose.pose.position.z = x, y, z
        response.angle = rotation * 2 * math.pi / 16
        response.q_value, response.center_px = 0.25, [float(u), float(v)]
        response.rotation_index, response.num_rotations = rotation, 16
        response.explored = request.epsilon > 0.3
        response.heightmap_stamp, response.model_version = request.heightmap.header.stamp, 7
        return response


def test_executor_runs_grasp_cycles_against_the_sim(tmp_path):
    rclpy.init()
    sim = SimNode(parameter_overrides=[Parameter("num_objects", value=1), Parameter("seed", value=4),
                                       Parameter("object_library", value="blocks"),
                                       Parameter("publish_rate", value=2.0)])
    outcomes = []  # what the world really did, in order
    world_grasp, world_reset = sim.world.execute_grasp, sim.world.reset

    def recording_grasp(*args, **kwargs):
        result = world_grasp(*args, **kwargs)
        if result.executed:
            outcomes.append((result, time.time_ns()))
        return result

    resets = []

    def recording_reset(*args, **kwargs):
        names = world_reset(*args, **kwargs)
        resets.append(time.time_ns())
        return names

    sim.world.execute_grasp, sim.world.reset = recording_grasp, recording_reset
    perception = HeightmapNode(parameter_overrides=[Parameter("use_tf", value=False),
                                                    Parameter("calibration_file", value=str(CALIBRATION))])
    stub_node = rclpy.create_node("propose_stub")
    proposer = ScriptedProposer(stub_node, ["corner", "corner", "refuse", "outside", "tallest"])
    experiences = []
    stub_node.create_subscription(GraspExperience, "/grasp/experience", experiences.append, EXPERIENCE_QOS)
    csv_path = tmp_path / "attempts.csv"
    executor_node = ExecutorNode(parameter_overrides=[
        Parameter("max_attempts", value=4), Parameter("learning", value="default"),
        Parameter("learning_overrides", value="episode.reset_after_failures=2 episode.empty_min_area=4e-5 "
                                              "exploration.epsilon_schedule=vpg"),
        Parameter("retry_delay", value=0.05), Parameter("csv_path", value=str(csv_path)),
        Parameter("epsilon_step_offset", value=2000), Parameter("heightmap_timeout", value=60.0)])
    executor = rclpy.executors.SingleThreadedExecutor()
    for n in (sim, perception, stub_node, executor_node):
        executor.add_node(n)
    # Spin in this thread: the simulator's GL context belongs to the thread that created it. The grasp loop
    # runs in the executor node's own worker thread.
    try:
        executor_node.start()
        deadline = time.monotonic() + 90.0
        while not (executor_node.done.is_set() and len(experiences) >= 4):
            assert time.monotonic() < deadline, f"4 attempts not done in 90 s ({len(experiences)} experiences)"
            executor.spin_once(timeout_sec=0.05)
        assert executor_node.error is None
    finally:
        executor_node.stop()
        executor.shutdown()
        for n in (executor_node, stub_node, perception, sim):
            n.destroy_node()
        rclpy.shutdown()

    # Four executed attempts -> four experiences; the refused proposal and the refused grasp made none.
    assert len(experiences) == 4 and len(outcomes) == 4
    assert executor_node.refused == 1 and len(proposer.requests) == 6
    assert [e.attempt for e in experiences] == [1, 2, 3, 4]
    assert len({e.id for e in experiences}) == 4 and all(len(e.id) == 36 for e in experiences)
    assert all(e.source == "/" and e.model_version == 7 and e.num_rotations == 16 for e in experiences)
    # Reward = what the simulated grasp did; the two corner grasps are misses.
    assert [e.reward for e in experiences] == [float(r.grasp_success) for r, _ in outcomes]
    assert [e.failure_reason for e in experiences] == [int(r.failure_reason) for r, _ in outcomes]
    assert experiences[0].reward == experiences[1].reward == 0.0
    # The state is the heightmap the proposal was computed on (so state and action match).
    executed_requests = [proposer.requests[i] for i in (0, 1, 4, 5)]
    for exp, req in zip(experiences, executed_requests):
        assert exp.heightmap.header.stamp == req.heightmap.header.stamp
        assert bytes(exp.heightmap.depth.data) == bytes(req.heightmap.depth.data)
    # Epsilon follows grasp_core's vpg schedule over attempts (offset 2000), the same for retries of one attempt.
    schedule = ExplorationConfig(epsilon_schedule="vpg")
    want = [epsilon_at(schedule, 2000 + k) for k in (0, 1, 2, 2, 2, 3)]
    np.testing.assert_allclose([r.epsilon for r in proposer.requests], want, rtol=1e-6)
    # The loop's exploration mode goes with every request; the first corner miss left the scene unchanged, so the
    # second request excludes it (FailedGraspMemory), and the reset after the second miss forgets it.
    assert {r.exploration_mode for r in proposer.requests} == {"affordance"}
    assert list(proposer.requests[0].exclude_rotation_index) == []
    assert (list(proposer.requests[1].exclude_rotation_index), list(proposer.requests[1].exclude_pixel_x),
            list(proposer.requests[1].exclude_pixel_y)) == ([4], [4], [219])
    assert list(proposer.requests[2].exclude_rotation_index) == []
    # Terminal: after 2 failures in a row (then the scene was reset), or when the grasp emptied the scene.
    assert not experiences[0].terminal and experiences[1].terminal
    for exp, (result, _) in zip(experiences[2:], outcomes[2:]):
        assert exp.terminal == (result.objects_remaining == 0)
    for exp, (result, t_grasp) in zip(experiences, outcomes):
        if exp.terminal:
            assert len(exp.next_heightmap.depth.data) == 0
        else:  # the next state is a heightmap of the scene after the grasp
            assert stamp_ns(exp.next_heightmap.header.stamp) > t_grasp
            assert msg_to_heightmap(exp.next_heightmap)[1].shape == (224, 224)
    assert bytes(experiences[1].heightmap.depth.data) == bytes(experiences[0].next_heightmap.depth.data)
    # After the reset the next state comes from the new scene.
    assert len(resets) >= 1 and stamp_ns(experiences[2].heightmap.header.stamp) > resets[0]
    # The action: pixel, rotation and the pose that was sent.
    assert (experiences[0].pixel_x, experiences[0].pixel_y, experiences[0].rotation_index) == (4, 219, 4)
    assert experiences[0].pose.header.frame_id == "world"
    # The CSV holds every attempt.
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["experience_id"] for r in rows] == [e.id for e in experiences]
    assert [float(r["reward"]) for r in rows] == [e.reward for e in experiences]
    logged = read_attempts(csv_path)  # the shared attempt log (grasp_core.attempts): a typed jsonl beside the csv
    assert [r["experience_id"] for r in logged] == [e.id for e in experiences] and all(r["message"] for r in logged)
    assert [r["terminal"] for r in logged] == [e.terminal for e in experiences]


def test_bad_heightmaps_are_ignored_and_emptiness_follows_vpg():
    from grasp_core.workspace import VPG_SIM_WORKSPACE
    from grasp_interfaces.msg import Heightmap
    from grasp_ros.conversions import heightmap_to_msg

    rclpy.init()
    try:
        node = ExecutorNode(parameter_overrides=[Parameter("learning_overrides", value="episode.empty_min_area=4e-5")])
        node._on_heightmap(Heightmap())  # no images at all
        ws = VPG_SIM_WORKSPACE
        depth = np.zeros(ws.shape, np.float32)
        color = np.zeros(ws.shape + (3,), np.uint8)
        broken = heightmap_to_msg(color, depth, ws)
        broken.depth.data = bytes(broken.depth.data)[:-4]  # truncated
        node._on_heightmap(broken)
        assert node.bad_heightmaps == 2 and node._latest is None
        empty = heightmap_to_msg(color, depth, ws)
        node._on_heightmap(empty)
        assert node._latest is empty and node.is_empty(empty)
        depth[:3, :3] = 0.05  # 9 cells of 2 mm higher than 2 cm: still empty (VPG sim: 10)
        assert node.is_empty(heightmap_to_msg(color, depth, ws))
        depth[:4, :3] = 0.05  # 12 cells: an object
        assert not node.is_empty(heightmap_to_msg(color, depth, ws))
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_executor_parameters_are_checked():
    rclpy.init()
    try:
        with pytest.raises(ParameterError, match="epsilon_end <= epsilon_start"):
            ExecutorNode(parameter_overrides=[Parameter("learning_overrides", value="exploration.epsilon_start=0.1 "
                                                                                   "exploration.epsilon_end=0.5")])
        with pytest.raises(ParameterError, match="unknown learning preset|one of"):
            ExecutorNode(parameter_overrides=[Parameter("learning", value="fastest")])
        with pytest.raises(ParameterError, match="backend"):
            ExecutorNode(parameter_overrides=[Parameter("backend", value="gazebo")])
        with pytest.raises(ParameterError, match="moveit_py"):
            ExecutorNode(parameter_overrides=[Parameter("backend", value="moveit")])
    finally:
        rclpy.shutdown()


def test_a_cell_whose_every_proposal_is_refused_says_so_and_stops(tmp_path):
    """Issue 11, defect 3: a NaN model made every proposal fail and the loop retried forever without a word."""
    from grasp_core.workspace import VPG_SIM_WORKSPACE
    from grasp_execution.backend import GraspBackend, GraspOutcome
    from grasp_interfaces.msg import Heightmap
    from grasp_ros.conversions import heightmap_to_msg
    from grasp_ros.qos import LATEST_QOS

    class NeverCalled(GraspBackend):
        name = "never"
        grasps = 0

        def execute_grasp(self, pose, angle):
            self.grasps += 1  # the one proposal that came back: not executed, so no experience
            return GraspOutcome.refused("test backend: not executed")

        def reset(self):
            raise AssertionError("the scene is not empty")

    rclpy.init()
    nodes = []
    try:
        stub_node = rclpy.create_node("refusing_stub")
        # Start-up refusals (no model yet) are only reported; once a proposal came back, 5 in a row stop the loop.
        proposer = ScriptedProposer(stub_node, ["refuse"] * 7 + ["tallest", "refuse"])
        backend = NeverCalled()
        executor_node = ExecutorNode(backend=backend, parameter_overrides=[
            Parameter("max_refused_proposals", value=5), Parameter("refusal_report_every", value=2),
            Parameter("retry_delay", value=0.01)])
        nodes = [executor_node, stub_node]
        ws = VPG_SIM_WORKSPACE.with_resolution(0.007)
        depth = np.zeros(ws.shape, np.float32)
        depth[20:35, 20:35] = 0.05  # an object: not an empty workspace
        hm = heightmap_to_msg(np.zeros(ws.shape + (3,), np.uint8), depth, ws)
        hm.header.frame_id = "world"
        hm.header.stamp = executor_node.get_clock().now().to_msg()
        publisher = stub_node.create_publisher(Heightmap, "grasp/heightmap", LATEST_QOS)
        executor = rclpy.executors.SingleThreadedExecutor()
        for n in nodes:
            executor.add_node(n)
        executor_node.start()
        deadline = time.monotonic() + 120.0
        while not executor_node.done.is_set():
            assert time.monotonic() < deadline, f"the loop did not stop ({len(proposer.requests)} requests)"
            hm.header.stamp = executor_node.get_clock().now().to_msg()
            publisher.publish(hm)
            executor.spin_once(timeout_sec=0.05)
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown()
    assert executor_node.error is not None and "5 proposals in a row were refused" in executor_node.error
    assert "stub: no model yet" in executor_node.error and "max_refused_proposals = 5" in executor_node.error
    assert len(proposer.requests) == 7 + 1 + 5 and executor_node.attempts == 0 and backend.grasps == 1


def test_a_shutdown_during_an_attempt_is_not_reported_as_a_fault():
    """The demo stops the graph after its last attempt, possibly while the executor waits for the heightmap after
    one more grasp: that attempt is dropped with a warning, not closed as terminal and published (the context may
    be gone), and the node does not end with an error."""
    from grasp_core.workspace import VPG_SIM_WORKSPACE
    from grasp_ros.conversions import heightmap_to_msg

    from grasp_execution.backend import GraspOutcome

    rclpy.init()
    try:
        node = ExecutorNode(parameter_overrides=[Parameter("heightmap_timeout", value=30.0)])
        ws = VPG_SIM_WORKSPACE
        depth = np.zeros(ws.shape, np.float32)
        depth[100:120, 100:120] = 0.05
        state = heightmap_to_msg(np.zeros(ws.shape + (3,), np.uint8), depth, ws)
        published = []
        node.experience_pub.publish = published.append
        proposal = ProposeGrasp.Response(success=True, rotation_index=4, num_rotations=16, center_px=[110.0, 110.0])
        outcome = GraspOutcome(executed=True, grasp_success=True, failure_reason=0, message="grasped object_00",
                               objects_remaining=3)
        node._stop.set()
        started = time.monotonic()
        assert node._finish_attempt(state, proposal, proposal.pose, 0.1, outcome, node._now_ns()) is None
        assert time.monotonic() - started < 5.0  # it did not sit out heightmap_timeout
        assert node.attempts == 0 and published == [] and node.log.outcomes == []
        assert node.error is None
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_an_unplannable_proposal_is_not_an_attempt_and_is_not_proposed_again():
    """Issue 24: a grasp the robot cannot plan to was recorded as an executed failure (reward 0, into the replay).
    Now it is not executed: no experience, no attempt, counted apart, and excluded from the next proposals on the
    unchanged scene. The backend is also asked whether the robot is ready before the attempts."""
    from grasp_core.grasp_failure import GraspFailure
    from grasp_core.workspace import VPG_SIM_WORKSPACE
    from grasp_execution.backend import GraspBackend, GraspOutcome
    from grasp_interfaces.msg import Heightmap
    from grasp_ros.conversions import heightmap_to_msg
    from grasp_ros.qos import LATEST_QOS

    class UnplannableTwice(GraspBackend):
        name = "unplannable_twice"

        def __init__(self):
            self.grasps, self.ready_checks = 0, 0

        def wait_until_ready(self, stop):
            self.ready_checks += 1
            return self.ready_checks == 1  # the first time it "waited": the executor takes a fresh heightmap

        def execute_grasp(self, pose, angle):
            self.grasps += 1
            if self.grasps <= 2:
                return GraspOutcome(False, False, GraspFailure.UNREACHABLE, "unplannable: no plan to the "
                                    "pre-grasp pose")
            return GraspOutcome(True, False, GraspFailure.NOTHING_GRASPED, "nothing held")

        def reset(self):
            raise AssertionError("the scene is not empty")

    rclpy.init()
    nodes = []
    try:
        stub_node = rclpy.create_node("unplannable_stub")
        proposer = ScriptedProposer(stub_node, ["tallest"])
        backend = UnplannableTwice()
        executor_node = ExecutorNode(backend=backend, parameter_overrides=[
            Parameter("max_attempts", value=1), Parameter("retry_delay", value=0.01),
            Parameter("learning", value="default")])
        published = []
        executor_node.experience_pub.publish = published.append
        nodes = [executor_node, stub_node]
        ws = VPG_SIM_WORKSPACE.with_resolution(0.007)
        depth = np.zeros(ws.shape, np.float32)
        depth[20:35, 20:35] = 0.05
        hm = heightmap_to_msg(np.zeros(ws.shape + (3,), np.uint8), depth, ws)
        hm.header.frame_id = "world"
        publisher = stub_node.create_publisher(Heightmap, "grasp/heightmap", LATEST_QOS)
        executor = rclpy.executors.SingleThreadedExecutor()
        for n in nodes:
            executor.add_node(n)
        executor_node.start()
        deadline = time.monotonic() + 120.0
        while not executor_node.done.is_set():
            assert time.monotonic() < deadline, f"no attempt in 120 s ({backend.grasps} grasps)"
            hm.header.stamp = executor_node.get_clock().now().to_msg()
            publisher.publish(hm)
            executor.spin_once(timeout_sec=0.05)
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown()
    assert executor_node.error is None and backend.ready_checks >= 4
    assert executor_node.unplannable == 2 and executor_node.refused == 0 and backend.grasps == 3
    assert executor_node.attempts == 1 and len(published) == 1 and published[0].attempt == 1
    assert executor_node.log.outcomes == [0]  # G counts the one executed attempt only
    first, second, third = proposer.requests[:3]
    assert list(first.exclude_rotation_index) == []
    assert list(second.exclude_rotation_index) == [4] and list(third.exclude_rotation_index) == [4, 4]
    assert second.exclude_pixel_x[0] == third.exclude_pixel_x[1] and second.exclude_radius_px > 0
