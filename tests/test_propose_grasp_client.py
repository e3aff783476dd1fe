"""The example client `propose_grasp_client` over DDS (issue 23): a plain request to an affordance node process that
serves a `default`-preset model gets the model's own greedy grasp on the latest heightmap; no service and a refusal
are clear errors with exit code 1."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.msg import Heightmap  # noqa: E402

from grasp_affordance.model_holder import load_checkpoint_model, propose  # noqa: E402
from grasp_bringup.process_graph import NodeSpec  # noqa: E402
from grasp_core.learning import PRESETS  # noqa: E402
from grasp_ros.qos import LATEST_QOS  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from graph_helpers import (TINY_WORKSPACE, RosClient, box_scene, graph_in_test_domain, start_and_wait,  # noqa: E402
                           train_default_preset_model)

pytestmark = pytest.mark.ros


def client(*args, timeout=180.0):
    """The command as a user runs it in the workspace shell (this test runs inside scripts/in_env.sh)."""
    return subprocess.run(["propose_grasp_client", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client")
    model = train_default_preset_model(tmp)
    with graph_in_test_domain(tmp / "logs") as g:
        start_and_wait(g, NodeSpec("grasp_affordance", "affordance_node", label="affordance_node",
                                   params={"model_path": str(model)}),
                       "affordance node ready", timeout=240.0)
        start_and_wait(g, NodeSpec("grasp_affordance", "affordance_node", label="no_model", namespace="/empty"),
                       "affordance node ready", timeout=240.0)
        ros = RosClient("client_test_heightmaps")
        try:
            yield g, ros, model
        finally:
            ros.close()


def test_the_client_gets_the_models_greedy_grasp_on_the_latest_heightmap(graph):
    _, ros, model_path = graph
    color, depth, msg = box_scene(4, sec=4321)
    publisher = ros.node.create_publisher(Heightmap, "/grasp/heightmap", LATEST_QOS)
    publisher.publish(msg)  # transient local: the node gets it whenever it connects
    deadline = time.monotonic() + 120.0
    while True:
        result = client("--json", "--count", "2", "--timeout", "60")
        if result.returncode == 0 or "no heightmap" not in result.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # the node has not received the heightmap yet
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first == second  # greedy on an unchanged heightmap: the same grasp again (ProposeGrasp.srv)
    assert first["heightmap_stamp"] == [4321, 0] and first["frame_id"] == "world"

    model = load_checkpoint_model(model_path)
    assert model.actions == PRESETS["default"].actions  # the model's own, recorded by its learner
    expected = propose(model, color, depth, TINY_WORKSPACE, 0.0, np.random.default_rng(0))
    assert first["center_px"] == [float(expected.u), float(expected.v)]
    assert first["rotation_index"] == expected.rotation_index and not first["explored"]
    assert first["q_value"] == pytest.approx(expected.q_value, abs=1e-4)
    assert first["position"] == pytest.approx(list(expected.position), abs=1e-6)
    assert depth[expected.v, expected.u] > 0.01  # on an object, as the default preset chooses

    text = client("--timeout", "60")
    assert text.returncode == 0 and text.stdout.startswith("grasp at x=") and "model v6" in text.stdout


def test_no_service_and_a_refusal_are_clear_errors(graph):
    missing = client("--service", "/nobody/propose_grasp", "--timeout", "2")
    assert missing.returncode == 1
    assert "no service /nobody/propose_grasp within 2 s" in missing.stderr and "Traceback" not in missing.stderr
    refused = client("--timeout", "60", "--ros-args", "-r", "__ns:=/empty")  # that node has no model
    assert refused.returncode == 1
    assert "the node refused: no model loaded yet" in refused.stderr
    bad = client("--epsilon", "2")
    assert bad.returncode == 2 and "0 <= --epsilon <= 1" in bad.stderr
