"""Declared parameters with descriptions and validation, so a bad value stops a node with a clear message."""
from __future__ import annotations

from typing import Any, Callable

from rcl_interfaces.msg import ParameterDescriptor


class ParameterError(ValueError):
    """A parameter has a value the node cannot work with."""


def declare(node, name: str, default: Any, description: str, *,
            check: Callable[[Any], bool] | None = None, requirement: str = "", read_only: bool = False) -> Any:
    """Declare `name` with a description and return its value; raise ParameterError if `check` fails."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only,
                                     additional_constraints=requirement)
    value = node.declare_parameter(name, default, descriptor).value
    if check is not None and not check(value):
        raise ParameterError(f"parameter '{name}' = {value!r} is invalid: {requirement or description}")
    return value


def in_range(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: v is not None and low <= v <= high


def one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: v in choices
