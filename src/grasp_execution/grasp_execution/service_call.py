"""Blocking service calls from a worker thread while another thread spins the node's executor."""
from __future__ import annotations

import threading


class ServiceUnavailable(RuntimeError):
    """The service has no server (yet)."""


def call_service(client, request, timeout: float, wait_for_server: float = 0.0):
    """Send `request` and wait up to `timeout` s for the response.

    The node must be spun by another thread (the response arrives through the executor). Raises
    ServiceUnavailable when no server appears within `wait_for_server` s, TimeoutError when the response does not
    arrive in time (the request is then abandoned).
    """
    if not client.wait_for_service(timeout_sec=max(wait_for_server, 0.0)):
        raise ServiceUnavailable(f"service {client.srv_name} has no server")
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        client.remove_pending_request(future)
        raise TimeoutError(f"no response from {client.srv_name} within {timeout:.1f} s")
    if future.exception() is not None:
        raise RuntimeError(f"{client.srv_name} failed: {future.exception()}")
    return future.result()
