"""A small stand-in for `launch` / `launch_ros` (not installable beside the PyPI ROS wheels) that *runs* a launch
file's generate_launch_description(): declared arguments with their defaults and choices, `name:=value` overrides,
OpaqueFunctions called with a context, IfCondition evaluated, substitutions performed. What comes out is the list of
nodes and included launch files `ros2 launch` would start, with their performed parameters and arguments.

Included launch files of other packages run in the same launch context, as they do in ROS 2 Jazzy's `launch`:
IncludeLaunchDescription sets its launch arguments as configurations of the one shared context (no scope), and a
DeclareLaunchArgument applies its default only when the name is still unset, so an included file inherits every
configuration of the same name its includer (or an earlier include) set. UPSTREAM models the included files from
their Jazzy sources (declared arguments with defaults and choices, their own includes, the configurations they hand
to xacro's load_yaml or read as YAML), and `upstream_problems` says which of those would fail.

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
    # include of an UPSTREAM file: the value of each argument it declares, as it sees them, and the ones it inherited
    # from the shared context (set before, by someone else than this include's launch arguments)
    configurations: dict = field(default_factory=dict)
    inherited: dict = field(default_factory=dict)


JAZZY_SHARE = "/opt/ros/jazzy/share"


@dataclass(frozen=True)
class UpstreamArgument:
    """A DeclareLaunchArgument of an upstream launch file. `default`: None when required; `{name}` placeholders are
    other configurations (the defaults' LaunchConfiguration substitutions)."""

    name: str
    default: str | None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class UpstreamLaunchFile:
    """What an included launch file of another package does with the shared launch context."""

    arguments: tuple[UpstreamArgument, ...]
    # its own includes: ((package, launch file) of the default, launch file path, launch arguments); the path and
    # the arguments with `{name}` placeholders
    includes: tuple[tuple[tuple[str, str], str, dict], ...] = ()
    # configurations that must name a YAML file (xacro's load_yaml, ParameterFile, yaml.load): '' fails there
    yaml_files: tuple[str, ...] = ()
    # configurations whose value `''` (two quote characters) means "no file" (realsense2_camera's convention)
    optional_yaml_files: tuple[str, ...] = ()


def _arguments(*specs) -> tuple[UpstreamArgument, ...]:
    return tuple(UpstreamArgument(*spec) if isinstance(spec, tuple) else UpstreamArgument(spec, None) for spec in specs)


UR_TYPES = ("ur3", "ur5", "ur10", "ur3e", "ur5e", "ur7e", "ur10e", "ur12e", "ur16e", "ur8long", "ur15", "ur18",
            "ur20", "ur30")
UR_DESCRIPTION_CONFIG = JAZZY_SHARE + "/ur_description/config/{ur_type}/"
# The tool communication, safety and port arguments ur_control.launch.py and ur_rsp.launch.py both declare.
_UR_SHARED = (("safety_limits", "true"), ("safety_pos_margin", "0.15"), ("safety_k_position", "20"),
              ("tf_prefix", ""), ("use_mock_hardware", "false"), ("mock_sensor_commands", "false"),
              ("headless_mode", "false"), ("use_tool_communication", "false"), ("tool_parity", "0"),
              ("tool_baud_rate", "115200"), ("tool_stop_bits", "1"), ("tool_rx_idle_chars", "1.5"),
              ("tool_tx_idle_chars", "3.5"), ("tool_device_name", "/tmp/ttyUR"), ("tool_tcp_port", "54321"),
              ("tool_voltage", "0"), ("reverse_ip", "0.0.0.0"), ("script_command_port", "50004"),
              ("reverse_port", "50001"), ("script_sender_port", "50002"), ("trajectory_port", "50003"))
# ur_robot_driver 3.8 (jazzy), realsense2_camera 4.56.1: the arguments each launch file declares, in order.
UPSTREAM = {
    ("ur_robot_driver", "ur_control.launch.py"): UpstreamLaunchFile(
        arguments=_arguments(
            ("ur_type", None, UR_TYPES), "robot_ip", *_UR_SHARED[:3],
            ("controllers_file", JAZZY_SHARE + "/ur_robot_driver/config/ur_controllers.yaml"),
            ("description_launchfile", JAZZY_SHARE + "/ur_robot_driver/launch/ur_rsp.launch.py"),
            *_UR_SHARED[3:7], ("controller_spawner_timeout", "10"),
            ("initial_joint_controller", "scaled_joint_trajectory_controller",
             ("scaled_joint_trajectory_controller", "joint_trajectory_controller", "forward_velocity_controller",
              "forward_position_controller", "freedrive_mode_controller", "passthrough_trajectory_controller")),
            ("activate_joint_controller", "true"), ("launch_rviz", "true"),
            ("rviz_config_file", JAZZY_SHARE + "/ur_description/rviz/view_robot.rviz"),
            ("launch_dashboard_client", "true"), *_UR_SHARED[7:],
            ("update_rate_config_file", JAZZY_SHARE + "/ur_robot_driver/config/{ur_type}_update_rate.yaml")),
        includes=((("ur_robot_driver", "ur_rsp.launch.py"), "{description_launchfile}",
                   {"robot_ip": "{robot_ip}", "ur_type": "{ur_type}"}),),
        yaml_files=("controllers_file", "update_rate_config_file")),
    # Runs `xacro <description_file> kinematics_params:=<kinematics_params_file> ...`; ur_description's macro reads
    # each *_params file with xacro.load_yaml, which fails on ''.
    ("ur_robot_driver", "ur_rsp.launch.py"): UpstreamLaunchFile(
        arguments=_arguments(
            ("ur_type", None, UR_TYPES), ("verify_robot_model", "false"), "robot_ip", *_UR_SHARED[:3],
            ("joint_limit_params_file", UR_DESCRIPTION_CONFIG + "joint_limits.yaml"),
            ("kinematics_params_file", UR_DESCRIPTION_CONFIG + "default_kinematics.yaml"),
            ("physical_params_file", UR_DESCRIPTION_CONFIG + "physical_parameters.yaml"),
            ("visual_params_file", UR_DESCRIPTION_CONFIG + "visual_parameters.yaml"),
            ("description_file", JAZZY_SHARE + "/ur_robot_driver/urdf/ur.urdf.xacro"), *_UR_SHARED[3:]),
        yaml_files=("joint_limit_params_file", "kinematics_params_file", "physical_params_file",
                    "visual_params_file")),
    ("realsense2_camera", "rs_launch.py"): UpstreamLaunchFile(
        arguments=_arguments(*[(name, default) for name, default in (
            ("camera_name", "camera"), ("camera_namespace", "camera"), ("serial_no", "''"), ("usb_port_id", "''"),
            ("device_type", "''"), ("config_file", "''"), ("json_file_path", "''"), ("initial_reset", "false"),
            ("accelerate_gpu_with_glsl", "false"), ("rosbag_filename", "''"), ("log_level", "info"),
            ("output", "screen"), ("enable_color", "true"), ("rgb_camera.color_profile", "0,0,0"),
            ("rgb_camera.color_format", "RGB8"), ("rgb_camera.enable_auto_exposure", "true"),
            ("enable_depth", "true"), ("enable_infra", "false"), ("enable_infra1", "false"),
            ("enable_infra2", "false"), ("depth_module.depth_profile", "0,0,0"), ("depth_module.depth_format", "Z16"),
            ("depth_module.infra_profile", "0,0,0"), ("depth_module.infra_format", "RGB8"),
            ("depth_module.infra1_format", "Y8"), ("depth_module.infra2_format", "Y8"),
            ("depth_module.color_profile", "0,0,0"), ("depth_module.exposure", "8500"), ("depth_module.gain", "16"),
            ("depth_module.hdr_enabled", "false"), ("depth_module.enable_auto_exposure", "true"),
            ("depth_module.exposure.1", "7500"), ("depth_module.gain.1", "16"), ("depth_module.exposure.2", "1"),
            ("depth_module.gain.2", "16"), ("enable_sync", "false"), ("depth_module.inter_cam_sync_mode", "0"),
            ("enable_rgbd", "false"), ("enable_gyro", "false"), ("enable_accel", "false"), ("gyro_fps", "0"),
            ("accel_fps", "0"), ("unite_imu_method", "0"), ("clip_distance", "-2."), ("angular_velocity_cov", "0.01"),
            ("linear_accel_cov", "0.01"), ("diagnostics_period", "0.0"), ("publish_tf", "true"),
            ("tf_publish_rate", "0.0"), ("pointcloud.enable", "false"), ("pointcloud.stream_filter", "2"),
            ("pointcloud.stream_index_filter", "0"), ("pointcloud.ordered_pc", "false"),
            ("pointcloud.allow_no_texture_points", "false"), ("align_depth.enable", "false"),
            ("colorizer.enable", "false"), ("decimation_filter.enable", "false"), ("spatial_filter.enable", "false"),
            ("temporal_filter.enable", "false"), ("disparity_filter.enable", "false"),
            ("hole_filling_filter.enable", "false"), ("hdr_merge.enable", "false"),
            ("wait_for_device_timeout", "-1."), ("reconnect_timeout", "6."))]),
        optional_yaml_files=("config_file",)),
}


def include_upstream(path: str, arguments: dict, context: Context, started: list) -> None:
    """IncludeLaunchDescription of `path` with `arguments`, run in the shared `context` (module docstring)."""
    package, name = Path(path).parts[-3], Path(path).name
    model = UPSTREAM.get((package, name))
    if model is None:
        raise ValueError(f"launch_stubs has no model of {package}/{name}: add it to UPSTREAM from its Jazzy sources")
    configurations = context.launch_configurations
    configurations.update(arguments)  # SetLaunchConfiguration for each launch argument: no scope
    inherited = {}
    for argument in model.arguments:
        if argument.name in configurations:
            if argument.name not in arguments:
                inherited[argument.name] = configurations[argument.name]
        elif argument.default is None:
            raise RuntimeError(f"{name}: required launch argument '{argument.name}' was not provided")
        else:
            configurations[argument.name] = argument.default.format_map(configurations)
        if argument.choices is not None and configurations[argument.name] not in argument.choices:
            raise RuntimeError(f"{name}: argument '{argument.name}' value {configurations[argument.name]!r} is not "
                               f"one of {list(argument.choices)}")
    started.append(Started("include", package, name, arguments=dict(arguments),
                           configurations={a.name: configurations[a.name] for a in model.arguments},
                           inherited=inherited))
    for _, nested_path, nested_arguments in model.includes:
        include_upstream(nested_path.format_map(configurations),
                         {k: v.format_map(configurations) for k, v in nested_arguments.items()}, context, started)


def reachable_arguments(key: tuple[str, str]) -> set[str]:
    """The arguments an UPSTREAM launch file takes: its own and, through the shared launch context, those of the
    files it includes."""
    model = UPSTREAM[key]
    names = {a.name for a in model.arguments}
    for nested, _, _ in model.includes:
        names |= reachable_arguments(nested)
    return names


def upstream_problems(started: list) -> list[str]:
    """What would fail inside the included upstream launch files, as they see the shared context."""
    problems = []
    for s in started:
        model = UPSTREAM.get((s.package, s.name)) if s.kind == "include" else None
        if model is None:
            continue
        for key in model.yaml_files + model.optional_yaml_files:
            value = s.configurations[key]
            if key in model.optional_yaml_files and value == "''":
                continue
            if not (value.endswith((".yaml", ".yml")) and os.path.isabs(value)):
                source = " (inherited from the shared launch context)" if key in s.inherited else ""
                problems.append(f"{s.name}: {key} is {value!r}{source}, not the path of a YAML file: loading it "
                                "fails at launch")
    return problems


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
                include_upstream(path, arguments, context, started)
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
