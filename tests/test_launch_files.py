"""The launch files and parameter files fit the installed nodes.

launch_ros is not installable beside the PyPI ROS wheels, so each launch file is read as a Python syntax tree:
every Node's package/executable must be an installed entry point (ours) or a known ROS 2 Jazzy executable, every
parameter name a launch file sets must be one the node declares, every config file it names must exist, and every
included launch file must be a known one taking the arguments given. Each parameter YAML is then loaded the way
`ros2 launch` does (`--params-file`) into the real nodes, started in-process with rclpy: every key must be a
parameter the node declares, with the file's value. Where launch_ros is importable (a real Jazzy install),
generate_launch_description() is also really called.
"""
import ast
import importlib.util
import inspect
import os
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from rclpy.node import Node as RclpyNode  # noqa: E402

from grasp_perception.calibration import load_calibration  # noqa: E402

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
PARAM_FILES = {"sim_ur5.launch.py": "ur5_sim.yaml", "real_ur3.launch.py": "ur3_real.yaml"}
# Executables of other ROS 2 Jazzy packages the launch files start (not installable here).
JAZZY_EXECUTABLES = {("tf2_ros", "static_transform_publisher"), ("rviz2", "rviz2")}
# Launch files included from other packages, with the arguments they declare that we set (upstream sources:
# ur_robot_driver ur_control.launch.py, realsense2_camera 4.56 rs_launch.py, ur_moveit_config ur_moveit.launch.py).
INCLUDABLE = {
    ("ur_robot_driver", "ur_control.launch.py"): {"ur_type", "robot_ip", "launch_rviz", "tool_voltage",
                                                  "use_mock_hardware", "headless_mode", "kinematics_params_file"},
    ("realsense2_camera", "rs_launch.py"): {"camera_namespace", "camera_name", "align_depth.enable", "enable_sync",
                                            "publish_tf", "pointcloud.enable", "rgb_camera.color_profile",
                                            "depth_module.depth_profile", "enable_color", "enable_depth"},
    ("ur_moveit_config", "ur_moveit.launch.py"): {"ur_type", "launch_rviz", "launch_servo", "use_sim_time"},
}
# The executables the brief of each launch file asks for (ours and the other engineers').
REQUIRED = {
    "sim_ur5.launch.py": {("grasp_sim", "sim_node"), ("grasp_perception", "heightmap_node"),
                          ("grasp_affordance", "affordance_node"), ("grasp_learning", "learner_node"),
                          ("grasp_execution", "executor_node"), ("rviz2", "rviz2")},
    "real_ur3.launch.py": {("grasp_perception", "heightmap_node"), ("grasp_affordance", "affordance_node"),
                           ("grasp_learning", "learner_node"), ("grasp_execution", "executor_node"),
                           ("tf2_ros", "static_transform_publisher"), ("rviz2", "rviz2")},
}


def _const(node):
    return node.value if isinstance(node, ast.Constant) else None


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def parse_launch(path: Path) -> dict:
    """Nodes (package, executable, name, parameter-dict keys), includes, string constants of a launch file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes, includes, strings, raw_includes = [], [], [], 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node.value)
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        kw = {k.arg: k.value for k in node.keywords}
        if name == "Node":
            keys = set()
            for item in getattr(kw.get("parameters"), "elts", []):
                if isinstance(item, ast.Dict):
                    keys |= {_const(k) for k in item.keys}
            nodes.append({"package": _const(kw.get("package")), "executable": _const(kw.get("executable")),
                          "name": _const(kw.get("name")), "parameter_keys": keys})
        elif name == "include":  # the launch files' helper: include(package, launch_file, {argument: value})
            package, launch_file, arguments = node.args
            includes.append((_const(package), _const(launch_file), {_const(k) for k in arguments.keys}))
        elif name == "IncludeLaunchDescription":
            raw_includes += 1
    return {"nodes": nodes, "includes": includes, "strings": strings, "raw_includes": raw_includes}


def node_class(executable: str):
    """The rclpy Node subclass behind an installed console script (module:main -> the Node defined there)."""
    (ep,) = entry_points(group="console_scripts", name=executable)
    module = importlib.import_module(ep.value.split(":")[0])
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, RclpyNode) and c is not RclpyNode and c.__module__ == module.__name__]
    assert len(classes) == 1, f"{ep.value}: expected one Node subclass, found {classes}"
    return classes[0]


# Import every node module now, at collection: torch/torchvision (affordance, learner, executor) must be loaded
# before the simulator creates a GL context, or triton's LLVM clashes with Mesa's and the process segfaults.
for _package, _executable in sorted(set().union(*REQUIRED.values())):
    if _package.startswith("grasp_"):
        node_class(_executable)


def flatten(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def launch_ros_importable() -> bool:
    # `launch` alone imports as a namespace package from the repository's launch/ folder: look for the real one.
    if importlib.util.find_spec("launch_ros") is None:
        return False
    import launch
    return hasattr(launch, "LaunchDescription")


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_nodes_includes_and_files(launch_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nodes started to list their parameters may create folders (replay, ...)
    parsed = parse_launch(launch_file)
    started = {(n["package"], n["executable"]) for n in parsed["nodes"]}
    assert REQUIRED[launch_file.name] <= started, f"missing: {REQUIRED[launch_file.name] - started}"
    for n in parsed["nodes"]:
        package, executable = n["package"], n["executable"]
        assert package and executable, f"{launch_file.name}: Node without a literal package/executable"
        if package.startswith("grasp_"):
            exe = ROOT / "install" / package / "lib" / package / executable
            assert exe.is_file() and os.access(exe, os.X_OK), f"{package}/{executable} is not installed at {exe}"
            if n["parameter_keys"]:  # names set by the launch file itself must be declared by the node
                declared = declared_parameters(node_class(executable), n["name"],
                                               ROOT / "config" / PARAM_FILES[launch_file.name])
                assert n["parameter_keys"] <= declared, \
                    f"{launch_file.name}: {executable} does not declare {n['parameter_keys'] - declared}"
        else:
            assert (package, executable) in JAZZY_EXECUTABLES, f"unknown executable {package}/{executable}"
    # Other packages' launch files come in through the include() helper only, so all of them are checked here.
    assert parsed["raw_includes"] == (1 if parsed["includes"] else 0)
    for package, launch_name, arguments in parsed["includes"]:
        assert (package, launch_name) in INCLUDABLE, f"unexpected include {package}/{launch_name}"
        assert arguments <= INCLUDABLE[(package, launch_name)], \
            f"{launch_name} does not take {arguments - INCLUDABLE[(package, launch_name)]}"
    if launch_file.name == "real_ur3.launch.py":
        assert {p for p, _, _ in parsed["includes"]} == {"ur_robot_driver", "realsense2_camera", "ur_moveit_config"}
        rs_args = next(a for p, _, a in parsed["includes"] if p == "realsense2_camera")
        assert "align_depth.enable" in rs_args
    # Every config file it names exists in config/ and is installed into grasp_bringup's share directory.
    named = [s for s in parsed["strings"] if s.endswith((".yaml", ".rviz"))]
    assert PARAM_FILES[launch_file.name] in named and "grasp.rviz" in named
    share = ROOT / "install" / "grasp_bringup" / "share" / "grasp_bringup"
    for name in named:
        assert (ROOT / "config" / name).is_file(), f"config/{name} does not exist"
        assert (share / "config" / name).is_file(), f"config/{name} is not installed (run make setup)"
    assert (share / "launch" / launch_file.name).is_file()
    if launch_ros_importable():  # a real ROS 2 install: the launch description really loads
        from launch import LaunchDescription
        spec = importlib.util.spec_from_file_location(launch_file.stem.replace(".", "_"), launch_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
        assert isinstance(description, LaunchDescription) and len(description.entities) >= 5


def node_arguments(param_file: Path, values: dict) -> list:
    """--ros-args as `ros2 launch` gives them; MoveItPy needs a real install, so the moveit backend's parameters are
    checked with the sim backend selected (they are declared either way)."""
    cli_args = ["--ros-args", "--params-file", str(param_file)]
    if values.get("backend") == "moveit" and importlib.util.find_spec("moveit") is None:
        cli_args += ["-p", "backend:=sim"]
    return cli_args


def file_values(param_file: Path, node_name: str) -> dict:
    """The parameters `param_file` gives node `node_name`, flattened to dotted names."""
    sections = yaml.safe_load(param_file.read_text())
    return flatten(sections.get(f"/**/{node_name}", {}).get("ros__parameters", {}))


def declared_parameters(cls, node_name: str, param_file: Path) -> set:
    rclpy.init()
    try:
        node = cls(cli_args=node_arguments(param_file, file_values(param_file, node_name)))
        try:
            return set(node.list_parameters([], 0).names)
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown()


def param_file_sections():
    for launch_name, param_name in PARAM_FILES.items():
        nodes = parse_launch(ROOT / "launch" / launch_name)["nodes"]
        by_name = {n["name"]: n for n in nodes if n["package"].startswith("grasp_")}
        sections = yaml.safe_load((ROOT / "config" / param_name).read_text())
        for key in sections:
            yield pytest.param(param_name, key, by_name, id=f"{param_name}:{key}")


@pytest.mark.parametrize("param_file,section,launched", list(param_file_sections()))
def test_parameter_file_keys_are_declared_by_the_real_nodes(param_file, section, launched, tmp_path, monkeypatch):
    assert section.startswith("/**/"), f"{section}: use /**/<node> so the file works in any namespace"
    node_name = section[len("/**/"):]
    assert node_name in launched, f"{param_file} configures {node_name}, which the launch file does not start"
    values = file_values(ROOT / "config" / param_file, node_name)
    assert values, f"{param_file}: {section} has no ros__parameters"
    cli_args = node_arguments(ROOT / "config" / param_file, values)
    if "backend:=sim" in cli_args:
        values["backend"] = "sim"
    monkeypatch.chdir(tmp_path)  # nodes that create folders (replay, checkpoints) make them here
    cls = node_class(launched[node_name]["executable"])
    rclpy.init()
    try:
        node = cls(cli_args=cli_args)  # the file's values pass the node's own validation
        try:
            assert node.get_name() == node_name
            declared = set(node.list_parameters([], 0).names)
            assert set(values) <= declared, f"{node_name} does not declare {sorted(set(values) - declared)}"
            for name, value in values.items():
                assert node.get_parameter(name).value == value, f"{node_name}.{name} did not take the file's value"
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown()


def test_every_config_yaml_is_used_or_a_known_kind():
    """No stray parameter file: each config/*.yaml is a node parameter file a launch file uses, a calibration,
    or the moveit_py configuration."""
    for path in sorted((ROOT / "config").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if path.name.endswith("_calibration.yaml"):
            load_calibration(path)  # raises with the reason if the file is malformed
        elif path.name == "moveit_py_ur3.yaml":
            assert {"planning_scene_monitor_options", "planning_pipelines", "plan_request_params"} <= set(data)
        else:
            assert path.name in PARAM_FILES.values(), f"config/{path.name} is used by no launch file"
