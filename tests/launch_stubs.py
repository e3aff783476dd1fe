"""A small stand-in for `launch` / `launch_ros` (not installable beside the PyPI ROS wheels) that *runs* a launch
file's generate_launch_description(): declared arguments with their defaults and choices, `name:=value` overrides,
OpaqueFunctions called with a context, IfCondition evaluated, substitutions performed. What comes out is the list of
nodes and included launch files `ros2 launch` would start, with their performed parameters and arguments.

Only the API the launch files of this repository use is covered; an unknown name fails the import, so a launch file
that starts using more of `launch` makes tests/test_launch_files.py say so.
"""
from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Context:
    def __init__(self, configurations: dict[str, str]):
        self.launch_configurations = dict(configurations)


def perform(value, context: Context):
    if isinstance(value, (list, tuple)):
        return "".join(perform(v, context) for v in value)
    if hasattr(value, "perform"):
        return value.perform(context)
    return value


def perform_deep(value, context: Context):
    """Parameters: dict values, list items and substitutions performed (a list of substitutions is one string)."""
    if isinstance(value, dict):
        return {k: perform_deep(v, context) for k, v in value.items()}
    if hasattr(value, "perform"):
        return value.perform(context)
    if isinstance(value, list) and any(hasattr(v, "perform") for v in value):
        return perform(value, context)
    return value


class LaunchConfiguration:
    def __init__(self, name: str):
        self.name = name

    def perform(self, context: Context) -> str:
        if self.name not in context.launch_configurations:
            raise KeyError(f"launch configuration '{self.name}' is not set (no DeclareLaunchArgument for it?)")
        return context.launch_configurations[self.name]


class PathJoinSubstitution:
    def __init__(self, parts):
        self.parts = list(parts)

    def perform(self, context: Context) -> str:
        return os.path.join(*[perform(p, context) for p in self.parts])


class FindPackageShare:
    """Our packages: the colcon install; others: where a Jazzy install puts them."""

    def __init__(self, package: str):
        self.package = package

    def perform(self, context: Context) -> str:
        if self.package.startswith("grasp_"):
            return str(ROOT / "install" / self.package / "share" / self.package)
        return f"/opt/ros/jazzy/share/{self.package}"


class IfCondition:
    def __init__(self, predicate):
        self.predicate = predicate

    def evaluate(self, context: Context) -> bool:
        value = perform(self.predicate, context).strip().lower()
        if value not in ("true", "false", "1", "0"):
            raise ValueError(f"IfCondition on {value!r}: not a boolean")
        return value in ("true", "1")


@dataclass
class DeclareLaunchArgument:
    name: str
    default_value: object = None
    description: str = ""
    choices: list | None = None


@dataclass
class OpaqueFunction:
    function: object


@dataclass
class PythonLaunchDescriptionSource:
    path: object


@dataclass
class IncludeLaunchDescription:
    source: PythonLaunchDescriptionSource
    launch_arguments: object = ()
    condition: IfCondition | None = None


@dataclass
class Node:
    package: str
    executable: str
    name: str | None = None
    output: str | None = None
    parameters: list = field(default_factory=list)
    arguments: list = field(default_factory=list)
    remappings: list = field(default_factory=list)
    condition: IfCondition | None = None
    namespace: str | None = None


class LaunchDescription:
    def __init__(self, entities=()):
        self.entities = list(entities)


@dataclass
class Started:
    """A node or an included launch file, performed."""

    kind: str  # "node" or "include"
    package: str
    name: str  # executable or launch file name
    node_name: str | None = None
    parameters: list = field(default_factory=list)  # parameter files (str) and dicts, in order
    arguments: dict | list = field(default_factory=dict)  # include: launch arguments; node: command-line arguments


def run_launch(description: LaunchDescription, overrides: dict[str, str] | None = None) -> tuple[list, dict]:
    """(started nodes and includes, launch configurations) of a launch description with `name:=value` overrides."""
    overrides = dict(overrides or {})
    context = Context({})
    declared = {}
    started: list[Started] = []

    def visit(entity):
        if isinstance(entity, DeclareLaunchArgument):
            declared[entity.name] = entity
            if entity.name in overrides:
                value = overrides[entity.name]
            elif entity.default_value is not None:
                value = perform(entity.default_value, context)
            else:
                raise ValueError(f"launch argument '{entity.name}' has no default: give {entity.name}:=...")
            if entity.choices is not None and value not in entity.choices:
                raise ValueError(f"{entity.name}:={value} is not one of {entity.choices}")
            context.launch_configurations[entity.name] = value
        elif isinstance(entity, OpaqueFunction):
            for action in entity.function(context) or []:
                visit(action)
        elif isinstance(entity, (Node, IncludeLaunchDescription)):
            if entity.condition is not None and not entity.condition.evaluate(context):
                return
            if isinstance(entity, Node):
                params = [perform_deep(p, context) for p in entity.parameters]
                started.append(Started("node", entity.package, entity.executable, entity.name,
                                       [str(p) if not isinstance(p, dict) else p for p in params],
                                       [perform(a, context) for a in entity.arguments]))
            else:
                path = perform(entity.source.path, context)
                arguments = {perform(k, context): perform(v, context) for k, v in entity.launch_arguments}
                started.append(Started("include", Path(path).parts[-3], Path(path).name, arguments=arguments))
        else:
            raise TypeError(f"launch_stubs does not know {type(entity).__name__}")

    unknown = set(overrides) - {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    if unknown:
        raise ValueError(f"the launch file declares no argument {sorted(unknown)}")
    for entity in description.entities:
        visit(entity)
    return started, context.launch_configurations


def stub_modules() -> dict[str, types.ModuleType]:
    """sys.modules entries for launch and launch_ros (install with monkeypatch.setitem)."""
    names = {
        "launch": {"LaunchDescription": LaunchDescription},
        "launch.actions": {"DeclareLaunchArgument": DeclareLaunchArgument, "OpaqueFunction": OpaqueFunction,
                           "IncludeLaunchDescription": IncludeLaunchDescription},
        "launch.conditions": {"IfCondition": IfCondition},
        "launch.launch_description_sources": {"PythonLaunchDescriptionSource": PythonLaunchDescriptionSource},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration,
                                 "PathJoinSubstitution": PathJoinSubstitution},
        "launch_ros": {},
        "launch_ros.actions": {"Node": Node},
        "launch_ros.substitutions": {"FindPackageShare": FindPackageShare},
    }
    modules = {}
    for name, attributes in names.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        module.__path__ = []  # a package, so that the submodules import
        modules[name] = module
    return modules


def load_launch_module(path: Path, monkeypatch):
    """Import a launch file with the stubs in place of launch / launch_ros."""
    import importlib.util

    for name, module in stub_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(path.name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
