"""Every package's package.xml declares what its code imports, and a sim-only rosdep install skips the robot stack.

The imports are read from each package's Python sources (every `import` and `from ... import`, also the ones inside
functions); test folders are left out. Each imported top-level module maps to the rosdep key that provides it
(`numpy` -> `python3-numpy`, `rclpy` -> `rclpy`, `grasp_core` -> `grasp_core`, ...) or, for what only pip has
(torch, mujoco, ...), to a pinned line of requirements.txt. The test fails on an import that no dependency covers,
on a `python3-*` dependency that no code imports, and on an unknown third-party module (add it to the table).

The UR / RealSense / MoveIt dependencies carry `condition="$GRASP_REAL_ROBOT == 1"`: `rosdep install` skips them
unless that variable is 1, so a simulation-only user does not pull in the robot stack (README, "Real robot").
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in (ROOT / "src").glob("*/package.xml"))

# Imported module -> rosdep key (ROS packages and Debian python3-* keys).
ROSDEP_KEYS = {
    "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "scipy": "python3-scipy",
    "tqdm": "python3-tqdm", "matplotlib": "python3-matplotlib",
    "rclpy": "rclpy", "rcl_interfaces": "rcl_interfaces", "builtin_interfaces": "builtin_interfaces",
    "std_msgs": "std_msgs", "std_srvs": "std_srvs", "sensor_msgs": "sensor_msgs", "geometry_msgs": "geometry_msgs",
    "visualization_msgs": "visualization_msgs", "shape_msgs": "shape_msgs", "moveit_msgs": "moveit_msgs",
    "service_msgs": "service_msgs", "ament_index_python": "ament_index_python", "tf2_ros": "tf2_ros_py",
    "launch": "launch", "launch_ros": "launch_ros", "moveit": "moveit_py",
    "moveit_configs_utils": "moveit_configs_utils",
    "ur_msgs": "ur_msgs", "rosidl_runtime_py": "rosidl_runtime_py", "rosidl_parser": "rosidl_parser",
}
# Imported module -> pip distribution pinned in requirements.txt (no rosdep key on a stock Jazzy install).
PIP_ONLY = {"torch": "torch", "torchvision": "torchvision", "mujoco": "mujoco", "safetensors": "safetensors",
            "tensorboard": "tensorboard", "rerun": "rerun-sdk", "rosbags": "rosbags", "mcap": "mcap",
            "mcap_ros2": "mcap-ros2-support", "onnxruntime": "onnxruntime", "onnx": "onnx",
            "ray": "ray"}
# Dependencies a real-robot user needs and a simulation-only user must not be made to install.
REAL_ROBOT_ONLY = {"ur_robot_driver", "ur_moveit_config", "ur_description", "ur_msgs", "moveit_py",
                   "moveit_configs_utils", "moveit_msgs", "realsense2_camera", "xacro", "shape_msgs",
                   "moveit_ros_visualization"}
REAL_CONDITION = "$GRASP_REAL_ROBOT == 1"


def imported_modules(package_dir: Path) -> dict[str, set[str]]:
    """Top-level module -> files importing it, over the package's own Python sources (tests left out)."""
    found: dict[str, set[str]] = {}
    sources = sorted((package_dir / package_dir.name).rglob("*.py"))
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def runtime_dependencies(package_dir: Path, environment: dict) -> set[str]:
    package = parse_package(str(package_dir / "package.xml"))
    package.evaluate_conditions(environment)
    deps = package.build_depends + package.exec_depends + package.build_export_depends + package.buildtool_depends
    return {d.name for d in deps if d.evaluated_condition}


def pinned_requirements() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


@pytest.mark.parametrize("package_dir", PACKAGES, ids=lambda p: p.name)
def test_package_xml_declares_every_import(package_dir):
    declared = runtime_dependencies(package_dir, {"GRASP_REAL_ROBOT": "1"})
    pinned = pinned_requirements()
    problems = []
    for module, files in sorted(imported_modules(package_dir).items()):
        where = ", ".join(sorted(files))
        if module == package_dir.name or module in sys.stdlib_module_names or module == "__future__":
            continue
        if module in PIP_ONLY:
            if PIP_ONLY[module] not in pinned:
                problems.append(f"{module} (in {where}) comes from pip: pin {PIP_ONLY[module]} in requirements.txt")
            continue
        key = module if (ROOT / "src" / module / "package.xml").is_file() else ROSDEP_KEYS.get(module)
        if key is None:
            problems.append(f"{module} (in {where}) is not in this test's table: add its rosdep key (ROSDEP_KEYS) "
                            "or its pip distribution (PIP_ONLY)")
        elif key not in declared:
            problems.append(f"{module} (in {where}) needs <exec_depend>{key}</exec_depend>")
    python_keys = {k for k in ROSDEP_KEYS.values() if k.startswith("python3-")}
    imported_keys = {ROSDEP_KEYS.get(m) for m in imported_modules(package_dir)}
    for key in sorted((declared & python_keys) - imported_keys):
        problems.append(f"<exec_depend>{key}</exec_depend> is declared but no code of the package imports it")
    assert not problems, f"{package_dir.name}/package.xml:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("package_dir", PACKAGES, ids=lambda p: p.name)
def test_robot_stack_is_only_installed_for_the_real_robot(package_dir):
    package = parse_package(str(package_dir / "package.xml"))
    for dep in package.build_depends + package.exec_depends + package.test_depends:
        if dep.name in REAL_ROBOT_ONLY:
            assert dep.condition == REAL_CONDITION, \
                f"{package_dir.name}: <exec_depend>{dep.name}</exec_depend> needs condition=\"{REAL_CONDITION}\""
    sim_only = runtime_dependencies(package_dir, {})
    real = runtime_dependencies(package_dir, {"GRASP_REAL_ROBOT": "1"})
    assert not sim_only & REAL_ROBOT_ONLY
    assert sim_only <= real


def test_the_real_robot_still_gets_its_stack():
    """With GRASP_REAL_ROBOT=1, rosdep installs the driver, MoveIt and the camera (what real_ur3.launch.py starts)."""
    everything = set().union(*(runtime_dependencies(p, {"GRASP_REAL_ROBOT": "1"}) for p in PACKAGES))
    assert {"ur_robot_driver", "ur_moveit_config", "moveit_py", "realsense2_camera", "ur_msgs"} <= everything
    sim = set().union(*(runtime_dependencies(p, {}) for p in PACKAGES))
    assert {"rclpy", "launch", "launch_ros", "python3-numpy"} <= sim
