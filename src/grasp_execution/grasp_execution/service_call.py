"""Blocking service calls from a worker thread while another thread spins the node's executor."""
from __future__ import annotations

import threading
import time

SERVER_CHECK_SECONDS = 0.5  # while waiting for a response, how often the server is looked for
SERVER_GONE_SECONDS = 1.0  # absent this long (every check): it went away, the response will never come


class ServiceUnavailable(RuntimeError):
    """The service has no server (yet)."""


class ServerGone(ServiceUnavailable):
    """The server went away while a request was pending: its response will never come."""


def call_service(client, request, timeout: float, wait_for_server: float = 0.0):
    """Send `request` and wait up to `timeout` s for the response.

    The node must be spun by another thread (the response arrives through the executor). Raises
    ServiceUnavailable when no server appears within `wait_for_server` s, ServerGone when the server disappears
    while the request is pending (DDS says so within moments of a server that exits; within its liveliness lease
    of one that dies), TimeoutError when the response does not arrive in time (the request is then abandoned).
    """
    if not client.wait_for_service(timeout_sec=max(wait_for_server, 0.0)):
        raise ServiceUnavailable(f"service {client.srv_name} has no server")
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    deadline = time.monotonic() + timeout
    absent_since = None
    while not done.wait(max(min(SERVER_CHECK_SECONDS, deadline - time.monotonic()), 0.0)):
        now = time.monotonic()
        if now >= deadline:
            client.remove_pending_request(future)
            raise TimeoutError(f"no response from {client.srv_name} within {timeout:.1f} s")
        if client.service_is_ready():
            absent_since = None
            continue
        absent_since = now if absent_since is None else absent_since
        if now - absent_since >= SERVER_GONE_SECONDS:
            client.remove_pending_request(future)
            raise ServerGone(f"the server of {client.srv_name} went away while the request was pending: no "
                             "response will come; the request is abandoned")
    if future.exception() is not None:
        raise RuntimeError(f"{client.srv_name} failed: {future.exception()}")
    return future.result()
