"""A user's node asks `/propose_grasp` with a plain request and gets the policy the model was trained for
(issue 23, section 1), against the simulated cell started as a user starts it.

What the user does, all in a fresh `source scripts/env.sh` shell:
1. trains a small model with the `default` learning preset: `grasp-experiments run --methods vanilla --steps 4 ...`;
2. starts the simulated cell's nodes as commands with the project's parameter file (`ros2 launch` is not
   installable here): `sim_node`, `heightmap_node`, and `affordance_node -p model_path:=<that model>`;
3. calls the service from an rclpy node of their own, which knows only rclpy and grasp_interfaces: a plain request
   must get the same grasp as the request the project's executor sends (the default preset's action space, sent
   as "custom" with its fields, on the same heightmap), and that grasp stands on an object;
4. runs the README's Python snippet and the example client `propose_grasp_client`.
Nothing of the project is imported beyond the generated interfaces (tests/outside/README.md).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.msg import Heightmap  # noqa: E402
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
FRESH_ENV = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
             "/sbin:/bin", "LANG": "C.UTF-8", "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"],
             "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
# The project's executor, with the default learning preset, sends these (ProposeGrasp.srv, "custom").
EXECUTORS_ACTION_SPACE = dict(action_space="custom", object_mask=True, object_min_height=0.01, edge_margin=0.016,
                              symmetric_q=True)
# heightmap_node publishes the latest heightmap reliable and transient-local, depth 1 (docs/design.md).
LATEST = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
Z_MIN = -0.0001  # config/ur5_sim.yaml's workspace


def shell(command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"source scripts/env.sh >/dev/null && {command}"], cwd=ROOT, env=FRESH_ENV,
                          capture_output=True, text=True, **kwargs)


class Cell:
    """The simulated cell's nodes, each a command started in the workspace shell (logs in `logs/`)."""

    def __init__(self, logs: Path, model: Path):
        self.logs, self.processes = logs, {}
        logs.mkdir(parents=True, exist_ok=True)
        params = "--ros-args --params-file config/ur5_sim.yaml"
        self.start("grasp_sim", f"sim_node {params} -p seed:=2317")  # a scene the other tests do not use
        self.start("heightmap_node", f"heightmap_node {params}")
        self.start("affordance_node", f"affordance_node {params} -p model_path:={shlex.quote(str(model))}")

    def start(self, name: str, command: str) -> None:
        log = open(self.logs / f"{name}.log", "w")
        self.processes[name] = (subprocess.Popen(["bash", "-c", f"source scripts/env.sh >/dev/null && exec {command}"],
                                                 cwd=ROOT, env=FRESH_ENV, stdout=log, stderr=subprocess.STDOUT,
                                                 start_new_session=True), log)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        for name, (process, _) in self.processes.items():
            assert process.poll() is None, f"{name} exited ({process.returncode}):\n{self.log(name)[-3000:]}"

    def stop(self) -> None:
        for process, _ in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for name, (process, log) in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            log.close()


class UserNode:
    """The user's own node: a ProposeGrasp client, and the heightmaps it has seen by stamp."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("users_grasp_client", context=self.context)
        self.client = self.node.create_client(ProposeGrasp, "propose_grasp")
        self.heightmaps: dict[tuple[int, int], Heightmap] = {}
        self.node.create_subscription(Heightmap, "grasp/heightmap", self._on_heightmap, LATEST)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                if not self.context.ok():
                    return
                raise

    def _on_heightmap(self, msg: Heightmap) -> None:
        self.heightmaps[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg

    def call(self, request: ProposeGrasp.Request, timeout: float = 120.0) -> ProposeGrasp.Response:
        future = self.client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            assert time.monotonic() < deadline, "no response from /propose_grasp"
            time.sleep(0.01)
        return future.result()

    def heightmap(self, stamp, timeout: float = 30.0) -> Heightmap:
        key = (stamp.sec, stamp.nanosec)
        deadline = time.monotonic() + timeout
        while key not in self.heightmaps:
            assert time.monotonic() < deadline, f"never saw the heightmap stamped {key}"
            time.sleep(0.05)
        return self.heightmaps[key]

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5.0)


def grasp_of(response: ProposeGrasp.Response):
    assert response.success, response.message
    return tuple(response.center_px), response.rotation_index, round(response.q_value, 5)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outside_plain_request")
    trained = shell(f"grasp-experiments run --methods vanilla --objects 4 --seeds 1 --steps 4 --profile fast "
                    f"--pretrain-images 2 --pretrain-epochs 1 --no-loss-comparison --learning default --quiet "
                    f"--out {shlex.quote(str(tmp / 'experiment'))}", timeout=600)
    assert trained.returncode == 0, trained.stderr
    (model,) = (tmp / "experiment").glob("runs/vanilla/*/*/model.safetensors")
    cell = Cell(tmp / "logs", model)
    user = UserNode()
    try:
        assert user.client.wait_for_service(timeout_sec=300.0), cell.log("affordance_node")
        deadline = time.monotonic() + 300.0
        while True:  # until the node has a heightmap (a clear refusal before that)
            cell.check_alive()
            response = user.call(ProposeGrasp.Request())
            if response.success:
                break
            assert "no heightmap" in response.message, response.message
            assert time.monotonic() < deadline, \
                f"no heightmap reached the affordance node:\n{cell.log('heightmap_node')}"
            time.sleep(1.0)
        yield cell, user, model
    finally:
        user.close()
        cell.stop()


def test_a_plain_request_gets_the_executors_grasp_on_the_same_heightmap(cell):
    cell_nodes, user, _ = cell
    assert "recorded in the checkpoint" in cell_nodes.log("affordance_node")  # the model's own action space, logged
    seen = set()
    for _ in range(3):
        plain = user.call(ProposeGrasp.Request())  # epsilon 0, no other field: what any node sends
        heightmap = user.heightmap(plain.heightmap_stamp)
        executors = user.call(ProposeGrasp.Request(heightmap=heightmap, **EXECUTORS_ACTION_SPACE))
        assert grasp_of(plain) == grasp_of(executors)
        assert grasp_of(user.call(ProposeGrasp.Request(heightmap=heightmap, action_space="default"))) == \
            grasp_of(plain)
        assert plain.pose.header.frame_id == "world" and not plain.explored
        assert plain.pose.pose.position.z - Z_MIN > 0.01  # the surface under the grasp is an object, not the table
        seen.add((plain.heightmap_stamp.sec, plain.heightmap_stamp.nanosec))
        time.sleep(1.2)  # the simulated camera republishes at 1 Hz: the next call plans on a newer heightmap
    assert len(seen) >= 2  # not one heightmap three times
    cell_nodes.check_alive()


def test_the_readme_snippet_and_the_example_client_work_against_the_cell(cell):
    cell_nodes, user, _ = cell
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    (snippet,) = [s for s in snippets if "ProposeGrasp.Request()" in s]
    result = shell(f"python -c {shlex.quote(snippet)}", timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.match(r"grasp at x=-?\d\.\d{3} y=-?\d\.\d{3} z=\d\.\d{3} in world, jaw angle", result.stdout), \
        result.stdout

    result = shell("propose_grasp_client --json --count 2", timeout=300)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        record = json.loads(line)
        assert record["success"] and record["frame_id"] == "world" and record["position"][2] - Z_MIN > 0.01
        stamp = ProposeGrasp.Response().heightmap_stamp
        stamp.sec, stamp.nanosec = record["heightmap_stamp"]
        heightmap = user.heightmap(stamp)  # the same heightmap through the executor's request: the same grasp
        executors = user.call(ProposeGrasp.Request(heightmap=heightmap, **EXECUTORS_ACTION_SPACE))
        assert (tuple(record["center_px"]), record["rotation_index"]) == grasp_of(executors)[:2]
    cell_nodes.check_alive()
