"""The `main()` the spin-until-shutdown nodes share: init, build (a bad parameter exits with code 2), spin, clean up."""
from __future__ import annotations

from typing import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from grasp_ros.params import ParameterError


def spin_node(make_node: Callable[[], Node], name: str, args=None,
              make_executor: Callable[[], Executor] = SingleThreadedExecutor) -> int:
    """Run the node `make_node()` builds until Ctrl-C or shutdown; returns the process exit code."""
    rclpy.init(args=args)
    try:
        node = make_node()
    except ParameterError as e:
        rclpy.logging.get_logger(name).fatal(str(e))
        rclpy.try_shutdown()
        return 2
    executor = make_executor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
