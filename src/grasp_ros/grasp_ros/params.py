"""Declared parameters with descriptions and validation, so a bad value stops a node with a clear message.

Parameters are read once, at start-up, so they are declared read-only: `ros2 param set` on one then fails with
"parameter is read-only" instead of reporting success and changing nothing. The few that a node applies while it
runs (epsilon, the affordance model) are declared `live=True`; `watch_live_parameters` then validates a change with
the same check as at start-up, lets the node apply it (which may refuse with a reason), and only then accepts it,
so `ros2 param set` reports exactly what happened.
"""
from __future__ import annotations

from typing import Any, Callable

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult

_LIVE_ATTRIBUTE = "_grasp_live_parameters"


class ParameterError(ValueError):
    """A parameter has a value the node cannot work with."""


def declare(node, name: str, default: Any, description: str, *,
            check: Callable[[Any], bool] | None = None, requirement: str = "", read_only: bool | None = None,
            live: bool = False) -> Any:
    """Declare `name` with a description and return its value; raise ParameterError if `check` fails.

    Read-only unless `live` (a node that applies changes while running, see watch_live_parameters)."""
    if read_only is None:
        read_only = not live
    if live and read_only:
        raise ValueError(f"parameter '{name}' cannot be both live and read-only")
    descriptor = ParameterDescriptor(description=description + ("" if read_only else " (can be changed live)"),
                                     read_only=read_only, additional_constraints=requirement)
    value = node.declare_parameter(name, default, descriptor).value
    if check is not None and not check(value):
        raise ParameterError(f"parameter '{name}' = {value!r} is invalid: {requirement or description}")
    if live:
        node.__dict__.setdefault(_LIVE_ATTRIBUTE, {})[name] = (check, requirement or description)
    return value


def live_parameter_names(node) -> set[str]:
    return set(node.__dict__.get(_LIVE_ATTRIBUTE, {}))


def watch_live_parameters(node, params: dict, apply: Callable[[str, Any], None] | None = None) -> None:
    """Accept `ros2 param set` on the node's live parameters: check each new value, call `apply(name, value)`
    (which raises ValueError to refuse, with the reason), then store it in `params`. Changes to other parameters
    are refused (rclpy refuses read-only ones before this callback; this catches writable ones declared elsewhere,
    such as use_sim_time, only if they are in `params`)."""
    live = node.__dict__.get(_LIVE_ATTRIBUTE, {})

    def on_set(parameters) -> SetParametersResult:
        changes = []
        for parameter in parameters:  # check all first: a refused change leaves the others unapplied too
            if parameter.name not in live:
                if parameter.name in params:
                    return SetParametersResult(successful=False, reason=f"'{parameter.name}' is read at start-up "
                                               "only: restart the node with the new value")
                continue
            check, requirement = live[parameter.name]
            if check is not None and not check(parameter.value):
                return SetParametersResult(successful=False, reason=f"'{parameter.name}' = {parameter.value!r} is "
                                           f"invalid: {requirement}")
            changes.append((parameter.name, parameter.value))
        for name, value in changes:
            if apply is not None:
                try:
                    apply(name, value)
                except ValueError as e:
                    return SetParametersResult(successful=False, reason=f"'{name}' = {value!r} refused: {e}")
            params[name] = value
            node.get_logger().info(f"parameter {name} set to {value!r} (live)")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def in_range(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: v is not None and low <= v <= high


def one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: v in choices
