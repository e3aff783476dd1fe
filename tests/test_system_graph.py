"""The whole simulated graph over DDS, every node its own process (tiny profile): two robots (/robot1, /robot2:
sim + heightmap + executor each) feed one learner; one affordance node serves both. Checks that grasp cycles
run, every experience reaches the learner's replay store, new model versions are announced and loaded, and an
outside client gets a grasp pose inside the workspace in the base frame.
"""
import os
import sys
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.msg import GraspExperience, Heightmap, ModelVersion  # noqa: E402
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402

from grasp_bringup.process_graph import NodeSpec  # noqa: E402
from grasp_core.grasp_pose import quaternion_to_angle  # noqa: E402
from grasp_core.replay import ReplayStore  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from grasp_ros.qos import EXPERIENCE_QOS, LATEST_QOS, MODEL_QOS  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from graph_helpers import REPO, RosClient, graph_in_test_domain, log_text, wait_until  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
MIN_CYCLES = 20
ROBOTS = ("/robot1", "/robot2")


def graph_specs(tmp):
    specs = [
        NodeSpec("grasp_learning", "learner_node", label="learner", params={
            "profile": "tiny", "replay_dir": str(tmp / "replay"), "checkpoint_dir": str(tmp / "checkpoints"),
            "learning_overrides": "publish_every=5", "torch_threads": 1}),
        NodeSpec("grasp_affordance", "affordance_node", label="affordance", params={
            "profile": "tiny", "torch_threads": 1}),
    ]
    for i, ns in enumerate(ROBOTS):
        specs += [
            NodeSpec("grasp_sim", "sim_node", ns, params={"num_objects": 4, "seed": 10 + i}),
            NodeSpec("grasp_perception", "heightmap_node", ns, params={
                "resolution": 0.007, "use_tf": False, "camera_qos": "reliable",  # as config/ur5_sim.yaml
                "calibration_file": str(REPO / "config" / "ur5_sim_calibration.yaml")}),
            NodeSpec("grasp_execution", "executor_node", ns, params={"propose_service": "/propose_grasp"}),
        ]
    return specs


def test_two_robots_feed_one_learner_and_models_flow_back(tmp_path):
    seen, versions, heightmaps = [], [], []
    with graph_in_test_domain(tmp_path / "logs") as graph:
        client = RosClient("system_test_client")
        try:
            node = client.node
            node.create_subscription(GraspExperience, "/grasp/experience", lambda m: seen.append((m.id, m.source)),
                                     EXPERIENCE_QOS)
            node.create_subscription(ModelVersion, "/grasp/model", versions.append, MODEL_QOS)
            node.create_subscription(Heightmap, "/robot1/grasp/heightmap", heightmaps.append, LATEST_QOS)
            for spec in graph_specs(tmp_path):
                graph.start(spec)
            started = time.monotonic()

            def progressed():
                dead = graph.dead()
                assert not dead, "\n".join(f"{n.label} exited {n.process.returncode}:\n{n.log_tail(30)}" for n in dead)
                sources = {s for _, s in seen}
                return len(seen) >= MIN_CYCLES and set(ROBOTS) <= sources and any(v.version >= 1 for v in versions)
            wait_until(progressed, 150.0, 0.5, f"{MIN_CYCLES} grasp cycles from both robots and a new model")
            cycle_time = (time.monotonic() - started) / len(seen)

            # The affordance node loaded a model the learner trained (not only the starting version 0).
            wait_until(lambda: "model loaded (announced version 1" in log_text(graph, "affordance"), 30.0,
                       what="the affordance node to load version 1")
            # An outside client: a grasp on robot1's latest heightmap, in the base frame, inside the workspace.
            service = node.create_client(ProposeGrasp, "/propose_grasp")
            assert service.wait_for_service(timeout_sec=10.0)
            assert heightmaps, "no heightmap seen on /robot1/grasp/heightmap"
            response = client.call(service, ProposeGrasp.Request(epsilon=0.0, heightmap=heightmaps[-1]))
            assert response.success, response.message
            assert response.model_version >= 1 and response.num_rotations == 4
            assert response.pose.header.frame_id == "world"
            p = response.pose.pose.position
            assert VPG_SIM_WORKSPACE.contains(p.x, p.y)
            assert VPG_SIM_WORKSPACE.z_min <= p.z <= VPG_SIM_WORKSPACE.z_max
            q = response.pose.pose.orientation
            assert quaternion_to_angle((q.x, q.y, q.z, q.w)) == pytest.approx(response.angle % (2 * 3.141592653589793),
                                                                              abs=1e-6)
            # Stop the executors, then every experience the test saw must be in the learner's store.
            for ns in ROBOTS:
                graph.stop_node(graph.node(f"{ns.strip('/')}_executor_node"))
            time.sleep(0.5)

            def stored_ids():
                with ReplayStore(tmp_path / "replay", read_only=True) as store:
                    return store.ids
            wait_until(lambda: {i for i, _ in seen} <= set(stored_ids()), 20.0, 0.2,
                       what="every published experience to be stored")
            graph.stop()
        finally:
            client.close()

    with ReplayStore(tmp_path / "replay", read_only=True) as store:
        ids = store.ids
        sources = {store.metadata(i)["source"] for i in range(len(store))}
    assert len(set(ids)) == len(ids) == len({i for i, _ in seen})  # each once, nothing unseen
    assert set(ROBOTS) <= sources
    print(f"{len(seen)} cycles, {cycle_time:.2f} s per cycle, {len(versions)} model versions seen")
