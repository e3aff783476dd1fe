"""Declared parameters with descriptions and validation, so a bad value stops a node with a clear message.

Parameters are read once, at start-up, so they are declared read-only: `ros2 param set` on one then fails with
"parameter is read-only" instead of reporting success and changing nothing. The few that a node applies while it
runs (epsilon, the affordance model) are declared `live=True`; `watch_live_parameters` then validates a change with
the same check as at start-up, lets the node apply it (which may refuse with a reason), and only then accepts it,
so `ros2 param set` reports exactly what happened.

A node keeps its parameters in one frozen config dataclass whose fields are made with `parameter` (default,
description, check); `declare_config` declares them all and returns the config the node was started with, so a
parameter's name, default and check are written once and read as attributes.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult

_LIVE_ATTRIBUTE = "_grasp_live_parameters"
_DECLARED_ATTRIBUTE = "_grasp_declared_parameters"
Config = TypeVar("Config")


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
    node.__dict__.setdefault(_DECLARED_ATTRIBUTE, set()).add(name)
    if check is not None and not check(value):
        raise ParameterError(f"parameter '{name}' = {value!r} is invalid: {requirement or description}")
    if live:
        node.__dict__.setdefault(_LIVE_ATTRIBUTE, {})[name] = (check, requirement or description)
    return value


def live_parameter_names(node) -> set[str]:
    return set(node.__dict__.get(_LIVE_ATTRIBUTE, {}))


def watch_live_parameters(node, apply: Callable[[str, Any], None]) -> None:
    """Accept `ros2 param set` on the node's live parameters: check each new value as at start-up, then call
    `apply(name, value)`, which takes it in (e.g. a new config) or raises ValueError to refuse, with the reason.
    Changes to the node's other declared parameters are refused (rclpy refuses read-only ones before this
    callback; this catches writable ones); parameters declared elsewhere, such as use_sim_time, are left alone."""
    live = node.__dict__.setdefault(_LIVE_ATTRIBUTE, {})
    declared = node.__dict__.setdefault(_DECLARED_ATTRIBUTE, set())

    def on_set(parameters) -> SetParametersResult:
        changes = []
        for parameter in parameters:  # check all first: a refused change leaves the others unapplied too
            if parameter.name not in live:
                if parameter.name in declared:
                    return SetParametersResult(successful=False, reason=f"'{parameter.name}' is read at start-up "
                                               "only: restart the node with the new value")
                continue
            check, requirement = live[parameter.name]
            if check is not None and not check(parameter.value):
                return SetParametersResult(successful=False, reason=f"'{parameter.name}' = {parameter.value!r} is "
                                           f"invalid: {requirement}")
            changes.append((parameter.name, parameter.value))
        for name, value in changes:
            try:
                apply(name, value)
            except ValueError as e:
                return SetParametersResult(successful=False, reason=f"'{name}' = {value!r} refused: {e}")
            node.get_logger().info(f"parameter {name} set to {value!r} (live)")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def parameter(default: Any, description: str, *, check: Callable[[Any], bool] | None = None,
              requirement: str = "", live: bool = False) -> Any:
    """A config dataclass field that declare_config declares as a node parameter (a tuple default becomes a list
    parameter)."""
    return dataclasses.field(default=default, metadata={"description": description, "check": check,
                                                         "requirement": requirement, "live": live})


def declare_config(node, config_type: type[Config], prefix: str = "") -> Config:
    """Declare every field of the `parameter`-made dataclass `config_type` as the parameter `prefix + name` and
    return the config holding the values the node was started with; raise ParameterError, naming the parameter
    and what it must be, for a value its check or the dataclass refuses."""
    values = {}
    for field in dataclasses.fields(config_type):
        if "description" not in field.metadata:
            raise TypeError(f"{config_type.__name__}.{field.name} is not a parameter() field")
        spec, is_tuple = field.metadata, isinstance(field.default, tuple)
        value = declare(node, prefix + field.name, list(field.default) if is_tuple else field.default,
                        spec["description"], check=spec["check"], requirement=spec["requirement"], live=spec["live"])
        values[field.name] = tuple(value) if is_tuple else value
    try:
        return config_type(**values)
    except ValueError as e:
        raise ParameterError(f"parameters of {node.get_name()} ({config_type.__name__}): {e}") from None


def in_range(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: v is not None and low <= v <= high


def one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: v in choices
