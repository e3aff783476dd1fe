"""What the launch files compute, with the standard library and PyYAML only.

`ros2 launch` runs under the system Python of a ROS 2 install, which sees this workspace's `install/` (after
`source install/setup.bash`) but not the project's virtual environment: no scipy, no numpy, no torch. So the launch
files import nothing but `launch`, `launch_ros`, the standard library, `yaml` and this module, and this module
imports nothing else (tests/test_launch_files.py checks both).

`read_calibration` checks a camera calibration file the way grasp_perception.calibration does (same keys, same
unit-quaternion tolerance) and gives the arguments of tf2_ros' static_transform_publisher.

`SIM_GRAPH` is the one description of the simulated grasp-learning graph: launch/sim_ur5.launch.py and the demo
runner (grasp_bringup.demo, which starts the same executables without `ros2 launch`) both build their nodes from
it, with the parameter file `SIM_PARAMS_FILE` (tests/test_launch_files.py checks that the two agree).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

KEYS = ("base_frame", "camera_frame", "translation", "rotation")
QUATERNION_NORM_TOLERANCE = 1e-3  # as grasp_perception.calibration


def _numbers(values, count: int, what: str, path) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or len(values) != count:
        raise ValueError(f"calibration file {path}: {what} needs {count} numbers, got {values!r}")
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"calibration file {path}: {what} needs {count} numbers, got {values!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"calibration file {path}: {what} must be finite, got {out}")
    return out


def read_calibration(path) -> dict:
    """{base_frame, camera_frame, translation [x, y, z], rotation [qx, qy, qz, qw] (normalised)} of a calibration
    YAML file; ValueError says what is wrong."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read the calibration file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"calibration file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict) or any(k not in data for k in KEYS):
        raise ValueError(f"calibration file {path} must hold the keys {list(KEYS)}")
    for name in ("base_frame", "camera_frame"):
        if not isinstance(data[name], str) or not data[name].strip():
            raise ValueError(f"calibration file {path}: {name} must be a non-empty frame name")
    translation = _numbers(data["translation"], 3, "translation [x, y, z]", path)
    rotation = _numbers(data["rotation"], 4, "rotation quaternion [qx, qy, qz, qw]", path)
    norm = math.sqrt(sum(v * v for v in rotation))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise ValueError(f"calibration file {path}: rotation {rotation} is not a unit quaternion (norm {norm:.6f}); "
                         "the order is [qx, qy, qz, qw]")
    return {"base_frame": data["base_frame"], "camera_frame": data["camera_frame"], "translation": translation,
            "rotation": [v / norm for v in rotation]}


def static_transform_arguments(calibration: dict) -> list[str]:
    """tf2_ros static_transform_publisher arguments publishing base_frame -> camera_frame."""
    (x, y, z), (qx, qy, qz, qw) = calibration["translation"], calibration["rotation"]
    return ["--x", repr(x), "--y", repr(y), "--z", repr(z), "--qx", repr(qx), "--qy", repr(qy), "--qz", repr(qz),
            "--qw", repr(qw), "--frame-id", calibration["base_frame"], "--child-frame-id", calibration["camera_frame"]]


def node_parameters(param_files, node_name: str, group: str) -> dict:
    """The `group.*` parameters the parameter files give `/**/<node_name>`, flattened to dotted names, later files
    winning: how real_ur3.launch.py gives the hand-eye calibration the executor's `moveit.*` (one description of
    the cell)."""
    out = {}
    for path in param_files:
        try:
            sections = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"cannot read the parameter file {path}: {e}") from None
        values = sections.get(f"/**/{node_name}", {}).get("ros__parameters", {}).get(group, {})

        def flatten(prefix, value):
            if isinstance(value, dict):
                for key, item in value.items():
                    flatten(f"{prefix}.{key}", item)
            else:
                out[prefix] = value
        flatten(group, values)
    return out


def is_true(text: str) -> bool:
    """A launch argument's boolean ('true' / 'false', as `ros2 launch` users write them)."""
    value = str(text).strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"expected true or false, got {text!r}")
    return value in ("true", "1")


@dataclass(frozen=True)
class GraphNode:
    """One node of a graph description: its executable, its node name (the key of its section in the parameter
    file) and whether each robot runs its own (in the robot's namespace) or the graph shares one."""

    package: str
    executable: str
    name: str
    per_robot: bool


# The simulated graph (docs/design.md, "The node graph"): one learner and one affordance node for every robot; a
# simulator, a heightmap node and an executor per robot. Launch files add their viewers (RViz, the camera's
# static transform), the demo runner its own (the browser viewer, the bag recorder).
SIM_GRAPH = (
    GraphNode("grasp_learning", "learner_node", "learner_node", per_robot=False),
    GraphNode("grasp_affordance", "affordance_node", "affordance_node", per_robot=False),
    GraphNode("grasp_sim", "sim_node", "grasp_sim", per_robot=True),
    GraphNode("grasp_perception", "heightmap_node", "heightmap_node", per_robot=True),
    GraphNode("grasp_execution", "executor_node", "executor_node", per_robot=True),
)
SIM_PARAMS_FILE = "ur5_sim.yaml"  # in config/: the parameters of every node of SIM_GRAPH
SIM_CALIBRATION_FILE = "ur5_sim_calibration.yaml"  # in config/: the simulated camera's pose
