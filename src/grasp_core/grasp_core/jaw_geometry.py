"""Jaw-geometry features: what the parallel jaw would meet at each cell of a rotated heightmap.

Why: the key-point warm start says where an object is, not which jaw angle works there (docs/learning.md 1.7).
The trunks' features carry the angle poorly: a head trained on them picked the right angle at 0.83 of new scenes
from ~1000 labelled grasps, against 0.75 for a random angle. Two fixed maps of the rotated depth the trunks see
carry it well: how high things stand under each finger when the jaw opens, and how much of the jaw's span the
object fills (0.89-0.93 from the same labels, docs/learning.md 1.8). They are not learned; the head learns how
much each one counts (`TwoStreamFCN.geometry_head`, zero at the warm start, so Q_s is unchanged).

In a rotated trunk input the jaw closes along the image's u axis (horizontal), as in VPG: rotation i turns the
heightmap by -angle_i. Channels, each averaged over a score cell (the trunk stride):
    0  span_u:   fraction of the jaw's stroke, along u through the pixel, that stands above `occupied_m`
    1  finger_u: the higher of the two open fingers' footprints (max height under each), / `height_scale_m`
    2  span_v, 3 finger_v: the same across the jaw (a reference the head can compare with)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS = ("span_u", "finger_u", "span_v", "finger_v")


@dataclass(frozen=True)
class JawGeometry:
    """The gripper and the heightmap scale the maps are made for. Defaults: an OnRobot RG2 (the simulated
    gripper, grasp_core.sim.gripper, and VPG's real one)."""

    pixel_m: float                  # metres per trunk-input pixel: heightmap resolution / zoom
    downsample: int = 1             # maps made on pixels this many times coarser (the zoom: it adds no detail)
    max_opening_m: float = 0.110    # jaw stroke
    finger_thickness_m: float = 0.012  # along the closing axis
    finger_width_m: float = 0.022   # across it
    occupied_m: float = 0.01        # a cell this high above the table counts as occupied
    height_scale_m: float = 0.05    # finger heights are given in this unit

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and value > 0):
                raise ValueError(f"JawGeometry.{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.downsample, int):
            raise ValueError(f"JawGeometry.downsample must be an integer, got {self.downsample!r}")

    def pixels(self, metres: float) -> int:
        """Whole working pixels (after `downsample`) in `metres`."""
        return max(0, round(metres / (self.pixel_m * self.downsample)))

    def to_record(self) -> dict:
        return asdict(self)


def _shift(image: torch.Tensor, du: int, dv: int) -> torch.Tensor:
    """out[..., v, u] = image[..., v + dv, u + du], zero beyond the border."""
    h, w = image.shape[-2:]
    padded = F.pad(image, (abs(du), abs(du), abs(dv), abs(dv)))
    return padded[..., abs(dv) + dv:abs(dv) + dv + h, abs(du) + du:abs(du) + du + w]


def _window_mean(image: torch.Tensor, half: int, dim: int) -> torch.Tensor:
    """Mean over image[..., x - half: x + half + 1] along `dim` (-1 or -2), zeros beyond the border; O(1) per
    pixel by a cumulative sum (avg_pool2d with a 1 x 111 kernel cost ~0.5 s for 16 rotations)."""
    pad = (half + 1, half) if dim == -1 else (0, 0, half + 1, half)
    total = F.pad(image, pad).cumsum(dim)
    size = image.shape[dim]
    upper, lower = total.narrow(dim, 2 * half + 1, size), total.narrow(dim, 0, size)
    return (upper - lower) / (2 * half + 1)


def _box_max(image: torch.Tensor, half_v: int, half_u: int) -> torch.Tensor:
    """Max over a (2 half_v + 1) x (2 half_u + 1) box around each pixel: two 1-D max pools (a max is separable)."""
    rows = F.max_pool2d(image, (2 * half_v + 1, 1), stride=1, padding=(half_v, 0))
    return F.max_pool2d(rows, (1, 2 * half_u + 1), stride=1, padding=(0, half_u))


class JawGeometryMaps(nn.Module):
    """(N, 1, S, S) raw rotated depth (metres above the table) -> (N, 4, S / stride, S / stride). No parameters."""

    def __init__(self, geometry: JawGeometry, stride: int):
        super().__init__()
        if stride < 1 or stride % geometry.downsample:
            raise ValueError(f"stride must be a positive multiple of downsample ({geometry.downsample}), got {stride}")
        self.geometry = geometry
        self.stride = int(stride)

    @property
    def channels(self) -> int:
        return len(CHANNELS)

    @torch.no_grad()
    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        if depth.dim() != 4 or depth.shape[1] != 1:
            raise ValueError(f"expected depth (N, 1, H, W), got {tuple(depth.shape)}")
        g = self.geometry
        depth = depth.float()
        if g.downsample > 1:
            depth = F.avg_pool2d(depth, g.downsample)
        occupied = (depth > g.occupied_m).float()
        half_stroke = g.pixels(g.max_opening_m / 2)
        finger_centre = g.pixels(g.max_opening_m / 2 + g.finger_thickness_m / 2)
        half_width, half_thickness = g.pixels(g.finger_width_m / 2), g.pixels(g.finger_thickness_m / 2)
        maps = []
        for along_u in (True, False):
            span = _window_mean(occupied, half_stroke, -1 if along_u else -2)
            under = _box_max(depth, half_width, half_thickness) if along_u else \
                _box_max(depth, half_thickness, half_width)
            du, dv = (finger_centre, 0) if along_u else (0, finger_centre)
            finger = torch.maximum(_shift(under, -du, -dv), _shift(under, du, dv)) / g.height_scale_m
            maps += [span, finger]
        return F.avg_pool2d(torch.cat(maps, 1), self.stride // g.downsample)
