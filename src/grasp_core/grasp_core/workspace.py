"""The grasp workspace: metric bounds, heightmap resolution and pixel <-> point conversion.

Conventions (the same as VPG, and as grasp_interfaces/Heightmap): a heightmap is indexed [row, col] =
[v, u]; column u runs along workspace x, row v along workspace y; pixel (u, v) stands for the point
x = x_min + u * resolution, y = y_min + v * resolution; heights are metres above z_min.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class WorkspaceLimits:
    """Axis-aligned workspace box in the robot base frame, metres, plus the heightmap resolution."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    z_min: float
    z_max: float
    resolution: float = 0.002

    def __post_init__(self) -> None:
        values = np.array([self.x_min, self.x_max, self.y_min, self.y_max, self.z_min, self.z_max, self.resolution])
        if not np.all(np.isfinite(values)):
            raise ValueError(f"workspace limits must be finite numbers, got {self}")
        if not (self.x_min < self.x_max and self.y_min < self.y_max and self.z_min < self.z_max):
            raise ValueError(f"workspace limits need min < max on every axis, got {self}")
        if self.resolution <= 0:
            raise ValueError(f"heightmap resolution must be > 0 m/pixel, got {self.resolution}")

    @property
    def shape(self) -> tuple[int, int]:
        """Heightmap (height, width) = (rows along y, columns along x)."""
        return (int(round((self.y_max - self.y_min) / self.resolution)),
                int(round((self.x_max - self.x_min) / self.resolution)))

    def with_resolution(self, resolution: float) -> "WorkspaceLimits":
        d = asdict(self)
        d["resolution"] = float(resolution)
        return WorkspaceLimits(**d)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "WorkspaceLimits":
        keys = ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"workspace limits are missing {missing}")
        return cls(**{k: float(d[k]) for k in keys}, resolution=float(d.get("resolution", 0.002)))

    def pixel_to_point(self, u: float, v: float, height: float = 0.0) -> np.ndarray:
        """Heightmap pixel (u = column, v = row) and height above z_min -> (x, y, z) in the base frame."""
        return np.array([self.x_min + u * self.resolution,
                         self.y_min + v * self.resolution,
                         self.z_min + height], dtype=np.float64)

    def point_to_pixel(self, x: float, y: float) -> tuple[int, int]:
        """(x, y) in the base frame -> heightmap pixel (u = column, v = row); raises if outside."""
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"point ({x}, {y}) is not finite")
        u = int(np.floor((x - self.x_min) / self.resolution + 1e-9))
        v = int(np.floor((y - self.y_min) / self.resolution + 1e-9))
        h, w = self.shape
        if not (0 <= u < w and 0 <= v < h):
            raise ValueError(f"point ({x:.4f}, {y:.4f}) is outside the workspace "
                             f"x [{self.x_min}, {self.x_max}], y [{self.y_min}, {self.y_max}]")
        return u, v

    def contains(self, x: float, y: float) -> bool:
        return bool(self.x_min <= x < self.x_max and self.y_min <= y < self.y_max)


def exceeds_pixel_cap(height: int, width: int, max_pixels: int) -> bool:
    """True when an H x W heightmap costs more than `max_pixels`: more pixels, or (a heightmap is rotated inside a
    square whose side is its diagonal, so a long thin one costs as much as a square of that diagonal)
    H^2 + W^2 > 2 * max_pixels, the diagonal of a square of max_pixels."""
    height, width = int(height), int(width)
    return height * width > max_pixels or height * height + width * width > 2 * max_pixels


# VPG's limits (method.md). The simulated UR5 sits at the world origin, the workspace in front of it at -x.
VPG_SIM_WORKSPACE = WorkspaceLimits(-0.724, -0.276, -0.224, 0.224, -0.0001, 0.4, 0.002)
# VPG's real-robot limits in the UR controller's `base` frame. ROS `base_link` is `base` rotated 180 deg
# about z, so in base_link x and y change sign: see config/ur3_real.yaml for the limits actually used.
VPG_REAL_WORKSPACE_UR_BASE = WorkspaceLimits(0.3, 0.748, -0.224, 0.224, -0.255, -0.1, 0.002)
