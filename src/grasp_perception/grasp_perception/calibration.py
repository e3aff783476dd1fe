"""Camera extrinsic calibration files: where the camera's optical frame sits in the robot base frame.

One small YAML file per robot (config/*_calibration.yaml), read by the heightmap node when tf2 is not used and by
real_ur3.launch.py to publish the same transform as a static TF:

    base_frame: base_link                    # the frame the heightmap's workspace limits are in
    camera_frame: camera_color_optical_frame # the colour images' header.frame_id (x right, y down, z forward)
    translation: [x, y, z]                   # metres: camera optical frame origin in base_frame
    rotation: [qx, qy, qz, qw]               # unit quaternion: camera optical frame orientation in base_frame

Together they are the 4x4 transform camera-optical -> base that grasp_core.heightmap.make_heightmap takes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

KEYS = ("base_frame", "camera_frame", "translation", "rotation")
# A quaternion this far from unit length is a typo, not rounding.
QUATERNION_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CameraCalibration:
    """The camera optical frame's pose in the base frame (translation metres, rotation quaternion x, y, z, w)."""

    base_frame: str
    camera_frame: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        for name in ("base_frame", "camera_frame"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"calibration {name} must be a non-empty frame name, got {value!r}")
        t = _numbers(self.translation, 3, "translation [x, y, z]")
        q = _numbers(self.rotation, 4, "rotation quaternion [qx, qy, qz, qw]")
        norm = math.sqrt(sum(v * v for v in q))
        if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
            raise ValueError(f"calibration rotation {list(q)} is not a unit quaternion (norm {norm:.6f}); "
                             "the order is [qx, qy, qz, qw]")
        object.__setattr__(self, "translation", t)
        object.__setattr__(self, "rotation", tuple(v / norm for v in q))

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous transform camera optical frame -> base frame."""
        pose = np.eye(4)
        pose[:3, :3] = Rotation.from_quat(self.rotation).as_matrix()
        pose[:3, 3] = self.translation
        return pose

    @classmethod
    def from_matrix(cls, base_frame: str, camera_frame: str, pose) -> "CameraCalibration":
        pose = np.asarray(pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise ValueError(f"camera pose must be a finite 4x4 transform, got shape {pose.shape}")
        quat = Rotation.from_matrix(pose[:3, :3]).as_quat()
        return cls(base_frame, camera_frame, tuple(float(v) for v in pose[:3, 3]), tuple(float(v) for v in quat))

    def as_dict(self) -> dict:
        return {"base_frame": self.base_frame, "camera_frame": self.camera_frame,
                "translation": [float(v) for v in self.translation], "rotation": [float(v) for v in self.rotation]}


def _numbers(values, count: int, what: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != count:
        raise ValueError(f"calibration {what} needs {count} numbers, got {values!r}")
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"calibration {what} needs {count} numbers, got {values!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"calibration {what} must be finite, got {list(out)}")
    return out


def resolve_path(path: str) -> Path:
    """A file path, or `package://<package>/<relative path>` inside an installed package's share directory
    (what the parameter YAML files use, since they cannot hold launch substitutions)."""
    path = str(path)
    if not path.startswith("package://"):
        return Path(path)
    package, _, relative = path[len("package://"):].partition("/")
    if not package or not relative:
        raise ValueError(f"'{path}' is not of the form package://<package>/<relative path>")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory  # noqa: PLC0415
    try:
        return Path(get_package_share_directory(package)) / relative
    except PackageNotFoundError:
        raise ValueError(f"'{path}': package '{package}' is not installed (or its workspace is not sourced)") from None


def load_calibration(path) -> CameraCalibration:
    """Read and check a calibration YAML file (a path or a package:// URI); ValueError says what is wrong."""
    path = resolve_path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read the calibration file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"calibration file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"calibration file {path} must hold a mapping with keys {list(KEYS)}")
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise ValueError(f"calibration file {path} is missing {missing} (needs {list(KEYS)})")
    try:
        return CameraCalibration(data["base_frame"], data["camera_frame"], data["translation"], data["rotation"])
    except ValueError as e:
        raise ValueError(f"calibration file {path}: {e}") from None


def save_calibration(calibration: CameraCalibration, path, comment: str = "") -> None:
    """Write a calibration file (with an optional leading comment block)."""
    header = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    Path(path).write_text(header + yaml.safe_dump(calibration.as_dict(), sort_keys=False,
                                                   default_flow_style=None))
