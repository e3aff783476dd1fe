"""The `main()` the spin-until-shutdown nodes share: init, build (a bad parameter exits with code 2), spin, clean up."""
from __future__ import annotations

import signal
import threading
from typing import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from grasp_ros.params import ParameterError

STOP_POLL_SECONDS = 0.2  # with `drain`, how often the spin loop looks for Ctrl-C / SIGTERM


def spin_node(make_node: Callable[[], Node], name: str, args=None,
              make_executor: Callable[[], Executor] = SingleThreadedExecutor,
              drain: Callable[[Node, Executor], None] | None = None) -> int:
    """Run the node `make_node()` builds until Ctrl-C or shutdown; returns the process exit code.

    `drain(node, executor)`, if given, runs on Ctrl-C or SIGTERM before anything is torn down, with the context
    still valid and the executor still spinnable, e.g. to answer the requests the node has taken. rclpy's own
    signal handlers are then not installed (they shut the context down at once, so nothing could be sent any
    more): a signal only sets a flag the spin loop looks at every STOP_POLL_SECONDS."""
    stop = threading.Event()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.ALL if drain is None else
               SignalHandlerOptions.NO)
    try:
        node = make_node()
    except ParameterError as e:
        rclpy.logging.get_logger(name).fatal(str(e))
        rclpy.try_shutdown()
        return 2
    except KeyboardInterrupt:  # with `drain`: Ctrl-C while the node was being built (nothing to answer yet)
        rclpy.try_shutdown()
        return 0
    if drain is not None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    executor = make_executor()
    executor.add_node(node)
    try:
        if drain is None:
            executor.spin()
        else:
            while rclpy.ok() and not stop.is_set():
                executor.spin_once(timeout_sec=STOP_POLL_SECONDS)
            if rclpy.ok():
                drain(node, executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
