"""affordance_node as its own process under load and when stopped (issue 23, 2.2 and 2.4): every /propose_grasp
request gets an answer (its grasp, a refusal, or "busy, retry"), none is lost in a queue, and a node stopped with
SIGINT answers the requests it has taken before it exits. Tiny profile, untrained model.

The clients here live in one process, so each client's response reader is given a deep queue: with Fast DDS every
client of a service receives every response (and keeps only its own), and the default depth of 10 can overflow
in a process that holds many clients. That is the callers' side; these tests are about the node.
"""
import os
import signal
import sys
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from service_msgs.msg import ServiceEventInfo  # noqa: E402

from grasp_bringup.process_graph import NodeSpec  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from grasp_ros.qos import SERVICE_EVENT_QOS  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from graph_helpers import graph_in_test_domain, heightmap_msg, log_text, start_and_wait  # noqa: E402

pytestmark = pytest.mark.ros
LABEL = "affordance_node"
CLIENT_QOS = QoSProfile(depth=100)  # see the module docstring


class Clients:
    """`count` ProposeGrasp clients, one node each, in one context spun by a background executor."""

    def __init__(self, count: int):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.nodes = [rclpy.create_node(f"load_client_{i}", context=self.context) for i in range(count)]
        self.clients = []
        for node in self.nodes:
            self.executor.add_node(node)
            self.clients.append(node.create_client(ProposeGrasp, "/propose_grasp", qos_profile=CLIENT_QOS))
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60.0
        for client in self.clients:
            assert client.wait_for_service(timeout_sec=max(deadline - time.monotonic(), 0.1)), "no server"

    def burst(self, request, timeout: float):
        """Every client sends `request` at once; the responses (None: never answered within `timeout`)."""
        futures = [client.call_async(request) for client in self.clients]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(f.done() for f in futures):
            time.sleep(0.02)
        return [f.result() if f.done() else None for f in futures]

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        for node in self.nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def start_node(graph, **params):
    spec = NodeSpec("grasp_affordance", "affordance_node", label=LABEL,
                    params={"profile": "tiny", "allow_untrained": True, "publish_visualization": False, **params})
    start_and_wait(graph, spec, "affordance node ready", timeout=240.0)  # torch import on a loaded machine


def test_a_burst_from_many_clients_gets_every_answer(tmp_path):
    """Issue 23, 2.2: 20 clients calling at once lost 8 of their first 20 calls with no error (the service's
    default queue of 10 overflowed while the node's executor threads waited for the model; see
    docs/reliability.md). Now every request is taken at once and answered."""
    with graph_in_test_domain(tmp_path / "logs") as graph:
        start_node(graph)
        clients = Clients(24)
        try:
            request = ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(seed=1))
            for burst in range(2):
                responses = clients.burst(request, timeout=40.0)
                lost = sum(r is None for r in responses)
                assert lost == 0, f"burst {burst}: {lost} of {len(responses)} requests never answered"
                assert all(r.success for r in responses), {r.message for r in responses if not r.success}
        finally:
            clients.close()
        assert graph.node(LABEL).alive()


def test_requests_beyond_max_waiting_get_busy_at_once(tmp_path):
    """More requests than max_waiting_requests wait for the model: the others are refused at once ("busy,
    retry") instead of queueing where a client cannot tell a slow node from a lost request."""
    big = VPG_SIM_WORKSPACE.with_resolution(0.448 / 400)  # 400 x 400 on the tiny network: a slow inference
    with graph_in_test_domain(tmp_path / "logs") as graph:
        start_node(graph, max_waiting_requests=2, max_batch=1)
        clients = Clients(6)
        try:
            responses = clients.burst(ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(seed=2,
                                                                                                 workspace=big)),
                                      timeout=60.0)
        finally:
            clients.close()
    assert all(r is not None for r in responses), "a request was never answered"
    busy = [r for r in responses if not r.success]
    assert busy and all("busy" in r.message and "max_waiting_requests" in r.message for r in busy), \
        [r.message for r in busy]
    assert sum(r.success for r in responses) >= 2


@pytest.mark.flaky(reruns=2, only_rerun=["the node answered too fast"])  # the precondition is timing; see docstring
def test_a_node_stopped_mid_request_answers_before_it_exits(tmp_path):
    """Issue 23, 2.4: SIGINT during a request: the node finished computing and exited 0 without sending the
    response ("InvalidHandle", "exception was never retrieved"); its callers waited out their timeouts. SIGINT
    here comes once the node has taken all 24 requests (its service events say so) and is busy with them: with 8,
    a quiet machine had answered all but one before the last request's event arrived (24 still does in ~1 of 4
    runs on a quiet machine: see the session note)."""
    big = VPG_SIM_WORKSPACE.with_resolution(0.448 / 400)  # 400 x 400 on the tiny network: a slow inference
    with graph_in_test_domain(tmp_path / "logs") as graph:
        start_node(graph, max_batch=1, service_introspection="metadata")  # small events: they come at once
        clients = Clients(24)  # below max_waiting_requests (32): none is refused as busy
        taken = []
        clients.nodes[0].create_subscription(
            ProposeGrasp.Event, "/propose_grasp/_service_event",
            lambda event: taken.append(1) if event.info.event_type == ServiceEventInfo.REQUEST_RECEIVED else None,
            SERVICE_EVENT_QOS)
        try:
            request = ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap_msg(seed=3, workspace=big))
            futures = [client.call_async(request) for client in clients.clients]
            deadline = time.monotonic() + 60.0
            while len(taken) < len(futures):
                assert time.monotonic() < deadline, f"the node took {len(taken)} of {len(futures)} requests"
                time.sleep(0.005)
            unanswered_at_sigint = sum(not f.done() for f in futures)
            node = graph.node(LABEL)
            node.process.send_signal(signal.SIGINT)
            code = node.process.wait(timeout=60.0)
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and not all(f.done() for f in futures):
                time.sleep(0.02)
            responses = [f.result() if f.done() else None for f in futures]
        finally:
            clients.close()
        log = log_text(graph, LABEL)
    assert unanswered_at_sigint >= 2, "the node answered too fast for the test to stop it mid-request"
    assert all(r is not None for r in responses), \
        f"{sum(r is None for r in responses)} of {len(responses)} requests never answered; log:\n{log[-3000:]}"
    refused = [r.message for r in responses if not r.success]
    assert refused and all("shutting down" in m for m in refused), refused
    assert code == 0
    assert "InvalidHandle" not in log and "never retrieved" not in log, log[-3000:]
