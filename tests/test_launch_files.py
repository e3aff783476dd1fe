"""The launch files and parameter files fit the installed nodes, and the real-robot launch starts what it should.

launch_ros is not installable beside the PyPI ROS wheels, so each launch file is *run* against a small stand-in of
`launch` / `launch_ros` (tests/launch_stubs.py): its generate_launch_description() with `name:=value` overrides,
OpaqueFunctions called, conditions evaluated. For what that starts: every Node's package/executable must be an
installed entry point (ours) or a known ROS 2 Jazzy executable, every parameter name a launch file sets must be one
the node declares, every parameter file must exist and be installed, and every included launch file must be a known
one taking the arguments given. The included files run in the launch context they share with the includer, as in
ROS 2 Jazzy (launch_stubs.UPSTREAM, from ur_robot_driver 3.8 ur_control.launch.py + ur_rsp.launch.py and
realsense2_camera 4.56.1 rs_launch.py): what they inherit and what they would hand to xacro must work. Each
parameter YAML is then loaded the way `ros2 launch` does (`--params-file`) into the real nodes, started in-process
with rclpy. The launch files may import only what `ros2 launch` has under the system Python: the standard library,
yaml, launch, launch_ros and grasp_bringup.launch_support. Where launch_ros is importable (a real Jazzy install),
generate_launch_description() is also really called.
"""
import ast
import functools
import importlib.util
import inspect
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from rclpy.node import Node as RclpyNode  # noqa: E402

from grasp_bringup import demo  # noqa: E402
from grasp_bringup.launch_support import SIM_GRAPH, SIM_PARAMS_FILE, read_calibration  # noqa: E402
from grasp_perception.calibration import load_calibration  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import launch_stubs  # noqa: E402
from launch_stubs import load_launch_module, reachable_arguments, run_launch, upstream_problems  # noqa: E402

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
# Parameter files of each launch file (the first is params_file's default; the others are added by arguments).
PARAM_FILES = {"sim_ur5.launch.py": ["ur5_sim.yaml"], "real_ur3.launch.py": ["ur3_real.yaml", "ur3_sim_camera.yaml"]}
# `name:=value` sets each launch file is run with (the real one: the robot, a dry run with the simulated camera, a
# calibrated robot with a camera of one's own and no learner or RViz).
SCENARIOS = {
    "sim_ur5.launch.py": [{}, {"learn": "false", "use_rviz": "false", "model_path": "/m.safetensors"}],
    "real_ur3.launch.py": [{"robot_ip": "192.168.1.102"}, {"use_mock_hardware": "true", "camera": "sim"},
                           {"robot_ip": "10.0.0.2", "kinematics_params_file": "/cal/ur3_factory.yaml",
                            "camera": "none", "learn": "false", "use_rviz": "false", "headless_mode": "true"},
                           {"robot_ip": "192.168.1.102", "calibrate": "true",
                            "calibration_file": "/home/me/ur3_calibration.yaml"}],
}
# Executables of other ROS 2 Jazzy packages the launch files start (not installable here).
JAZZY_EXECUTABLES = {("tf2_ros", "static_transform_publisher"), ("rviz2", "rviz2")}

# The executables the default run of each launch file must start.
REQUIRED = {
    "sim_ur5.launch.py": {("grasp_sim", "sim_node"), ("grasp_perception", "heightmap_node"),
                          ("grasp_affordance", "affordance_node"), ("grasp_learning", "learner_node"),
                          ("grasp_execution", "executor_node"), ("rviz2", "rviz2"),
                          ("tf2_ros", "static_transform_publisher")},
    "real_ur3.launch.py": {("grasp_perception", "heightmap_node"), ("grasp_affordance", "affordance_node"),
                           ("grasp_learning", "learner_node"), ("grasp_execution", "executor_node"),
                           ("tf2_ros", "static_transform_publisher"), ("rviz2", "rviz2")},
}
LAUNCH_IMPORTS = {"yaml", "launch", "launch_ros", "grasp_bringup.launch_support"}


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


REAL_LAUNCH = launch_ros_importable()  # before any test puts the stand-ins into sys.modules


def run(launch_file: Path, overrides: dict, monkeypatch):
    module = load_launch_module(launch_file, monkeypatch)
    return run_launch(module.generate_launch_description(), overrides)


def by_executable(started, executable):
    found = [s for s in started if s.kind == "node" and s.name == executable]
    assert len(found) <= 1
    return found[0] if found else None


def included(started, package):
    found = [s for s in started if s.kind == "include" and s.package == package]
    return found[0].arguments if found else None


def merged_parameters(node) -> dict:
    """The dicts a launch file gives a node, merged in order (files are checked separately)."""
    out = {}
    for p in node.parameters:
        if isinstance(p, dict):
            out.update(p)
    return out


def test_launch_files_import_only_what_ros2_launch_has():
    """`ros2 launch` runs under the system Python: no scipy, numpy or the project's venv."""
    for path in LAUNCH_FILES + [ROOT / "src" / "grasp_bringup" / "grasp_bringup" / "launch_support.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__" or top in LAUNCH_IMPORTS \
                    or name in LAUNCH_IMPORTS, f"{path.name} imports {name}"


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_nodes_includes_and_files(launch_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nodes started to list their parameters may create folders (replay, ...)
    share = ROOT / "install" / "grasp_bringup" / "share" / "grasp_bringup"
    assert (share / "launch" / launch_file.name).is_file(), "not installed (run make setup)"
    for i, overrides in enumerate(SCENARIOS[launch_file.name]):
        started, _ = run(launch_file, overrides, monkeypatch)
        if i == 0:
            nodes = {(s.package, s.name) for s in started if s.kind == "node"}
            assert REQUIRED[launch_file.name] <= nodes, f"missing: {REQUIRED[launch_file.name] - nodes}"
        for s in started:
            if s.kind == "include":
                takes = reachable_arguments((s.package, s.name))
                assert set(s.arguments) <= takes, f"{s.name} does not take {set(s.arguments) - takes}"
                continue
            if not s.package.startswith("grasp_"):
                assert (s.package, s.name) in JAZZY_EXECUTABLES, f"unknown executable {s.package}/{s.name}"
                continue
            exe = ROOT / "install" / s.package / "lib" / s.package / s.name
            assert exe.is_file() and os.access(exe, os.X_OK), f"{s.package}/{s.name} is not installed at {exe}"
            files = [Path(p) for p in s.parameters if not isinstance(p, dict)]
            assert files, f"{s.name} gets no parameter file"
            for f in files:  # every parameter file is one of config/, installed
                assert f.parent == share / "config" and f.name in PARAM_FILES[launch_file.name], f
                assert f.is_file() and (ROOT / "config" / f.name).is_file(), f"{f} is not installed (make setup)"
            keys = set(merged_parameters(s))
            if keys:  # names set by the launch file itself must be declared by the node
                declared = declared_parameters(node_class(s.name), s.node_name, files[0])
                assert keys <= declared, f"{launch_file.name}: {s.name} does not declare {keys - declared}"
        rviz = by_executable(started, "rviz2")
        if rviz is not None:
            assert Path(rviz.arguments[-1]) == share / "config" / "grasp.rviz" and Path(rviz.arguments[-1]).is_file()
    if REAL_LAUNCH:  # a real ROS 2 install: the launch description really loads
        from launch import LaunchDescription
        spec = importlib.util.spec_from_file_location(launch_file.stem.replace(".", "_"), launch_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
        assert isinstance(description, LaunchDescription) and len(description.entities) >= 5


def test_the_sim_launch_file_and_the_demo_start_one_graph(tmp_path, monkeypatch):
    """Both read launch_support.SIM_GRAPH: the same executables under the same node names, with one parameter file."""
    monkeypatch.chdir(tmp_path)
    started, _ = run(ROOT / "launch" / "sim_ur5.launch.py", {}, monkeypatch)
    ours = [s for s in started if s.kind == "node" and s.package.startswith("grasp_")]
    assert {(s.package, s.name, s.node_name) for s in ours} == {(n.package, n.executable, n.name) for n in SIM_GRAPH}
    assert {Path(p).name for s in ours for p in s.parameters if not isinstance(p, dict)} == {SIM_PARAMS_FILE}
    args = demo.parse_args(["--robots", "2", "--no-bag", "--profile", "tiny"])
    specs = demo.graph_specs(args, tmp_path, None)
    assert {(s.package, s.executable) for s in specs} == {(n.package, n.executable) for n in SIM_GRAPH}
    for n in SIM_GRAPH:  # shared nodes once at the root, the others once per robot namespace
        namespaces = sorted(s.namespace for s in specs if s.executable == n.executable)
        assert namespaces == (["/robot1", "/robot2"] if n.per_robot else ["/"]), n


def test_real_robot_launch(monkeypatch):
    """robot_ip: the driver, the RealSense, the calibrated camera TF, MoveIt, our nodes with the moveit backend."""
    launch_file = ROOT / "launch" / "real_ur3.launch.py"
    started, _ = run(launch_file, {"robot_ip": "192.168.1.102"}, monkeypatch)
    driver = included(started, "ur_robot_driver")
    assert driver["robot_ip"] == "192.168.1.102" and driver["ur_type"] == "ur3"
    assert driver["use_mock_hardware"] == "false" and driver["launch_rviz"] == "false"
    nominal = "/opt/ros/jazzy/share/ur_description/config/ur3/default_kinematics.yaml"  # the driver's own default
    assert driver["kinematics_params_file"] == nominal
    assert "tool_voltage" not in driver  # CB3: the executor sets it through SetIO (moveit.tool_voltage)
    assert included(started, "realsense2_camera")["align_depth.enable"] == "true"
    assert included(started, "ur_moveit_config") is None  # its move_group would be a second, unused planner
    assert by_executable(started, "sim_node") is None
    executor = merged_parameters(by_executable(started, "executor_node"))
    assert executor["backend"] == "moveit" and "moveit.gripper" not in executor
    assert executor["moveit.kinematics_params_file"] == nominal and "moveit.program_running_topic" not in executor
    tf = by_executable(started, "static_transform_publisher").arguments
    calibration = load_calibration(ROOT / "config" / "ur3_calibration.yaml")
    assert tf[tf.index("--frame-id") + 1] == calibration.base_frame == "base_link"
    assert float(tf[tf.index("--z") + 1]) == pytest.approx(calibration.translation[2])
    with pytest.raises(RuntimeError, match="robot_ip:=.*use_mock_hardware:=true"):
        run(launch_file, {}, monkeypatch)
    with pytest.raises(ValueError, match="not one of"):
        run(launch_file, {"robot_ip": "x", "camera": "kinect"}, monkeypatch)
    with pytest.raises(RuntimeError, match="kinematics_params_file:= is empty; leave it out"):
        run(launch_file, {"robot_ip": "x", "kinematics_params_file": ""}, monkeypatch)


def test_dry_run_without_the_robot(monkeypatch):
    """use_mock_hardware:=true camera:=sim: the driver's mock hardware, the simulated UR3 cell's camera, no gripper."""
    started, _ = run(ROOT / "launch" / "real_ur3.launch.py", {"use_mock_hardware": "true", "camera": "sim"},
                     monkeypatch)
    driver = included(started, "ur_robot_driver")
    assert driver["use_mock_hardware"] == "true" and driver["robot_ip"]
    assert included(started, "realsense2_camera") is None and included(started, "ur_moveit_config") is None
    sim = by_executable(started, "sim_node")
    assert sim is not None and [Path(p).name for p in sim.parameters] == ["ur3_real.yaml", "ur3_sim_camera.yaml"]
    overlay = yaml.safe_load((ROOT / "config" / "ur3_sim_camera.yaml").read_text())
    assert overlay["/**/grasp_sim"]["ros__parameters"]["robot"] == "ur3"
    assert overlay["/**/grasp_sim"]["ros__parameters"]["joint_states_topic"] != "joint_states"
    executor = by_executable(started, "executor_node")
    assert merged_parameters(executor)["moveit.gripper"] == "none"
    assert merged_parameters(executor)["moveit.tool_voltage"] == 0
    assert merged_parameters(executor)["moveit.program_running_topic"] == ""  # mock hardware runs no program
    assert "ur3_sim_camera.yaml" in [Path(p).name for p in executor.parameters if not isinstance(p, dict)]
    tf = by_executable(started, "static_transform_publisher").arguments
    sim_calibration = load_calibration(ROOT / "config" / "ur3_sim_calibration.yaml")
    assert tf[tf.index("--frame-id") + 1] == sim_calibration.base_frame  # `world`, the driver's URDF root
    heightmap = merged_parameters(by_executable(started, "heightmap_node"))
    assert heightmap["calibration_file"].endswith("ur3_sim_calibration.yaml")



@pytest.mark.parametrize("param_file", ["ur5_sim.yaml", "ur3_sim_camera.yaml"])
def test_the_heightmap_node_hears_grasp_sim_reliably(param_file):
    """Wherever grasp_sim is the camera, heightmap_node subscribes reliably: grasp_sim sends one ~1.5 MB frame per
    action, which Fast DDS's default transports lose whenever the subscriber drains them late, and only a reliable
    subscription gets it back (docs/reliability.md; tests/test_camera_delivery.py)."""
    params = yaml.safe_load((ROOT / "config" / param_file).read_text())["/**/heightmap_node"]["ros__parameters"]
    assert params["camera_qos"] == "reliable"


@pytest.mark.parametrize("param_files", [["ur5_sim.yaml"], ["ur3_real.yaml"], ["ur3_real.yaml", "ur3_sim_camera.yaml"]])
def test_the_affordance_node_expects_heightmaps_in_the_heightmap_nodes_frame(param_files):
    """The affordance node refuses heightmaps outside its base_frame (docs/reliability.md): each graph's files must
    give it the frame its heightmap node makes them in."""
    merged = {}
    for name in param_files:
        for key, section in yaml.safe_load((ROOT / "config" / name).read_text()).items():
            merged.setdefault(key, {}).update(section["ros__parameters"])
    assert merged["/**/affordance_node"]["base_frame"] == merged["/**/heightmap_node"]["base_frame"]

def test_calibrated_kinematics_reach_the_driver_and_moveit(monkeypatch):
    started, _ = run(ROOT / "launch" / "real_ur3.launch.py", SCENARIOS["real_ur3.launch.py"][2], monkeypatch)
    assert included(started, "ur_robot_driver")["kinematics_params_file"] == "/cal/ur3_factory.yaml"
    assert included(started, "ur_robot_driver")["headless_mode"] == "true"
    executor = merged_parameters(by_executable(started, "executor_node"))
    assert executor["moveit.kinematics_params_file"] == "/cal/ur3_factory.yaml"
    assert included(started, "realsense2_camera") is None and by_executable(started, "sim_node") is None
    assert by_executable(started, "learner_node") is None and by_executable(started, "rviz2") is None


@pytest.mark.parametrize("overrides", SCENARIOS["real_ur3.launch.py"], ids=["robot", "dry_run", "calibrated",
                                                                           "calibrate"])
def test_included_launch_files_work_in_the_shared_launch_context(overrides, monkeypatch):
    """ur_rsp.launch.py runs xacro with every *_params file it sees in the shared context; none may be ''. And an
    included file never silently inherits one of our arguments: each it declares, we pass explicitly."""
    launch_file = ROOT / "launch" / "real_ur3.launch.py"
    started, configurations = run(launch_file, overrides, monkeypatch)
    assert upstream_problems(started) == []
    rsp = [s for s in started if s.kind == "include" and s.name == "ur_rsp.launch.py"]
    assert len(rsp) == 1  # included by ur_control.launch.py
    expected = overrides.get("kinematics_params_file",
                             "/opt/ros/jazzy/share/ur_description/config/ur3/default_kinematics.yaml")
    assert rsp[0].configurations["kinematics_params_file"] == expected
    ours = set(declared_arguments(launch_file, monkeypatch))
    for s in started:
        if s.kind == "include" and s.name != "ur_rsp.launch.py":
            assert not set(s.inherited) & ours, f"{s.name} inherits {set(s.inherited) & ours} without being given them"


def declared_arguments(launch_file: Path, monkeypatch) -> list[str]:
    module = load_launch_module(launch_file, monkeypatch)
    return [e.name for e in module.generate_launch_description().entities
            if isinstance(e, launch_stubs.DeclareLaunchArgument)]


def test_the_shared_context_model_catches_a_shadowed_driver_default(monkeypatch):
    """A launch argument named like the driver's, defaulting to '' and not passed on (what real_ur3.launch.py once
    did with kinematics_params_file): ur_rsp.launch.py inherits '' and xacro's load_yaml('') fails."""
    def setup(context):
        arguments = {"ur_type": "ur3", "robot_ip": "0.0.0.0"}
        value = launch_stubs.LaunchConfiguration("kinematics_params_file").perform(context)
        if value:  # passed on only when set: the old launch file's rule
            arguments["kinematics_params_file"] = value
        source = launch_stubs.PythonLaunchDescriptionSource("/opt/ros/jazzy/share/ur_robot_driver/launch/"
                                                            "ur_control.launch.py")
        return [launch_stubs.IncludeLaunchDescription(source, arguments.items())]

    description = launch_stubs.LaunchDescription([
        launch_stubs.DeclareLaunchArgument("kinematics_params_file", default_value=""),
        launch_stubs.OpaqueFunction(setup)])
    started, _ = run_launch(description)
    (problem,) = upstream_problems(started)
    assert "ur_rsp.launch.py: kinematics_params_file is ''" in problem and "inherited" in problem
    started, _ = run_launch(description, {"kinematics_params_file": "/cal/ur3.yaml"})
    assert upstream_problems(started) == []
    with pytest.raises(RuntimeError, match="ur_type"):  # a required argument of the include, not given
        run_launch(launch_stubs.LaunchDescription([launch_stubs.OpaqueFunction(lambda context: [
            launch_stubs.IncludeLaunchDescription(launch_stubs.PythonLaunchDescriptionSource(
                "/opt/ros/jazzy/share/ur_robot_driver/launch/ur_control.launch.py"), [("robot_ip", "x")])])]))
    with pytest.raises(ValueError, match="no model"):
        run_launch(launch_stubs.LaunchDescription([launch_stubs.OpaqueFunction(lambda context: [
            launch_stubs.IncludeLaunchDescription(launch_stubs.PythonLaunchDescriptionSource(
                "/opt/ros/jazzy/share/ur_moveit_config/launch/ur_moveit.launch.py"))])]))


def test_calibrate_mode_starts_the_hand_eye_command_on_the_executors_cell(monkeypatch):
    launch_file = ROOT / "launch" / "real_ur3.launch.py"
    started, _ = run(launch_file, SCENARIOS["real_ur3.launch.py"][3], monkeypatch)
    nodes = {(s.package, s.name) for s in started if s.kind == "node"}
    assert nodes == {("grasp_execution", "hand_eye_calibration"), ("rviz2", "rviz2")}  # no learning, no old TF
    assert included(started, "ur_robot_driver")["robot_ip"] == "192.168.1.102"
    assert included(started, "realsense2_camera")["align_depth.enable"] == "true"
    calibration = by_executable(started, "hand_eye_calibration")
    values = merged_parameters(calibration)
    assert values["output"] == "/home/me/ur3_calibration.yaml" and values["moveit.node_name"] == "hand_eye_moveit_py"
    executor_cell = file_values(ROOT / "config" / "ur3_real.yaml", "executor_node")
    for key in ("moveit.table_box", "moveit.camera_box", "moveit.gripper_box", "moveit.tcp_offset"):
        assert values[key] == executor_cell[key]  # one description of the cell
    assert values["moveit.kinematics_params_file"].endswith("ur3/default_kinematics.yaml")
    with pytest.raises(RuntimeError, match="calibration_file:=<the YAML to write>"):
        run(launch_file, {"robot_ip": "192.168.1.102", "calibrate": "true"}, monkeypatch)
    mock, _ = run(launch_file, {"use_mock_hardware": "true", "camera": "sim", "calibrate": "true",
                                "calibration_file": "/tmp/c.yaml", "use_rviz": "false"}, monkeypatch)
    values = merged_parameters(by_executable(mock, "hand_eye_calibration"))
    assert values["moveit.program_running_topic"] == "" and values["moveit.camera_box"][3:] == [0.0, 0.0, 0.0]


def test_launch_support_reads_calibrations_like_the_heightmap_node(tmp_path):
    for path in sorted((ROOT / "config").glob("*_calibration.yaml")):
        ours, theirs = read_calibration(path), load_calibration(path)
        assert (ours["base_frame"], ours["camera_frame"]) == (theirs.base_frame, theirs.camera_frame)
        assert ours["translation"] == pytest.approx(list(theirs.translation))
        assert ours["rotation"] == pytest.approx(list(theirs.rotation))
    bad = tmp_path / "bad.yaml"
    bad.write_text("base_frame: a\ncamera_frame: b\ntranslation: [0, 0, 1]\nrotation: [0, 0, 0, 2]\n")
    with pytest.raises(ValueError, match="not a unit quaternion"):
        read_calibration(bad)
    with pytest.raises(ValueError, match="cannot read"):
        read_calibration(tmp_path / "missing.yaml")


# What the launch file itself gives a node and its parameter file cannot (the calibration's output path).
LAUNCH_GIVEN = {"hand_eye_calibration": ["output:=calibration.yaml"]}


def node_arguments(param_files, values: dict, node_name: str = "") -> list:
    """--ros-args as `ros2 launch` gives them; MoveItPy needs a real install, so the moveit backend's parameters are
    checked with the sim backend selected (they are declared either way)."""
    cli_args = ["--ros-args"]
    for param_file in ([param_files] if isinstance(param_files, (str, Path)) else param_files):
        cli_args += ["--params-file", str(param_file)]
    for given in LAUNCH_GIVEN.get(node_name, []):
        cli_args += ["-p", given]
    if values.get("backend") == "moveit" and importlib.util.find_spec("moveit") is None:
        cli_args += ["-p", "backend:=sim"]
    return cli_args


def file_values(param_file: Path, node_name: str) -> dict:
    """The parameters `param_file` gives node `node_name`, flattened to dotted names."""
    sections = yaml.safe_load(param_file.read_text())
    return flatten(sections.get(f"/**/{node_name}", {}).get("ros__parameters", {}))


@functools.lru_cache(maxsize=None)  # once per node: a learner keeps its replay folder open for writing
def declared_parameters(cls, node_name: str, param_file: Path) -> set:
    rclpy.init()
    try:
        node = cls(cli_args=node_arguments(param_file, file_values(param_file, node_name), node_name))
        try:
            return set(node.list_parameters([], 0).names)
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown()


def param_file_sections():
    for launch_name, param_names in PARAM_FILES.items():
        for param_name in param_names:
            sections = yaml.safe_load((ROOT / "config" / param_name).read_text())
            for key in sections:
                yield pytest.param(launch_name, param_name, key, id=f"{param_name}:{key}")


@pytest.mark.parametrize("launch_name,param_file,section", list(param_file_sections()))
def test_parameter_file_keys_are_declared_by_the_real_nodes(launch_name, param_file, section, tmp_path, monkeypatch):
    assert section.startswith("/**/"), f"{section}: use /**/<node> so the file works in any namespace"
    node_name = section[len("/**/"):]
    launched = {}
    for overrides in SCENARIOS[launch_name]:
        started, _ = run(ROOT / "launch" / launch_name, overrides, monkeypatch)
        for s in started:
            files = [ROOT / "config" / Path(p).name for p in s.parameters if not isinstance(p, dict)]
            if s.kind == "node" and s.package.startswith("grasp_") and param_file in [f.name for f in files]:
                launched[s.node_name] = {"executable": s.name, "files": files}
    assert node_name in launched, f"{param_file} configures {node_name}, which the launch file does not start"
    values = file_values(ROOT / "config" / param_file, node_name)
    assert values, f"{param_file}: {section} has no ros__parameters"
    files = launched[node_name]["files"]  # as the launch file gives them: the file under test after the base one
    files = files[:files.index(ROOT / "config" / param_file) + 1]
    cli_args = node_arguments(files, {k: v for f in files for k, v in file_values(f, node_name).items()}, node_name)
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
            assert any(path.name in names for names in PARAM_FILES.values()), \
                f"config/{path.name} is used by no launch file"
