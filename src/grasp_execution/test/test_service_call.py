"""call_service: a server that goes away while a request is pending is noticed within seconds (issue 23, 2.4: the
executor waited its full 60 s propose_timeout for an affordance node that had exited)."""
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from rclpy.task import Future  # noqa: E402

from grasp_execution.service_call import SERVER_GONE_SECONDS, ServerGone, ServiceUnavailable, call_service  # noqa: E402


class FakeClient:
    """An rclpy client's surface: the server is there until `gone_at` (monotonic s; None: always), answers only
    when `answer` is set."""

    srv_name = "/propose_grasp"

    def __init__(self, gone_at=None, answer=None):
        self.gone_at, self.answer = gone_at, answer
        self.abandoned = []

    def wait_for_service(self, timeout_sec=None):
        return self.service_is_ready()

    def service_is_ready(self):
        return self.gone_at is None or time.monotonic() < self.gone_at

    def call_async(self, request):
        future = Future()
        if self.answer is not None:
            threading.Timer(self.answer[0], future.set_result, args=(self.answer[1],)).start()
        return future

    def remove_pending_request(self, future):
        self.abandoned.append(future)


def test_a_server_that_goes_away_mid_request_is_noticed_within_seconds():
    client = FakeClient(gone_at=time.monotonic() + 0.5)
    t0 = time.monotonic()
    with pytest.raises(ServerGone, match="went away while the request was pending"):
        call_service(client, "request", timeout=30.0)
    assert time.monotonic() - t0 < 0.5 + SERVER_GONE_SECONDS + 2.0  # not the 30 s timeout
    assert len(client.abandoned) == 1  # rclpy forgets the request
    assert issubclass(ServerGone, ServiceUnavailable)  # callers that wait for a server again still do


def test_a_server_that_stays_answers_and_a_silent_one_times_out():
    assert call_service(FakeClient(answer=(1.2, "response")), "request", timeout=30.0) == "response"
    client = FakeClient()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="within 1.5 s"):
        call_service(client, "request", timeout=1.5)
    waited = time.monotonic() - t0
    assert waited >= 1.5  # never before its timeout
    assert waited < 1.5 + SERVER_GONE_SECONDS + 2.0  # nor long after it (one poll, and a loaded machine)
    assert len(client.abandoned) == 1
    with pytest.raises(ServiceUnavailable, match="has no server"):
        call_service(FakeClient(gone_at=0.0), "request", timeout=1.0)
