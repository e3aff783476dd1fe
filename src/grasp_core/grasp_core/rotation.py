"""Q(s, a): the FCN applied to R rotated copies of the heightmap (VPG's rotation scheme, seed III-C).

For rotation index i (jaw angle a_i = i * 2 pi / R, closing along (cos a_i, sin a_i) = (du, dv) in pixels,
see docs/design.md) the trunk sees the heightmap rotated by -a_i, so the closing direction becomes the image's
+u (horizontal) axis; its score map is rotated back by +a_i, upsampled to heightmap resolution and cropped,
so `Q[i, v, u]` lives in the original pixel frame. This is exactly VPG's `affine_mat_before/after`.

Steps (VPG for a 224 px heightmap and a stride-32 trunk with zoom 2): zero-pad the raw heightmap to a square
of side S >= its diagonal (so rotations keep all content) with S * zoom divisible by the trunk stride
(224 -> 320), zoom by `zoom` with nearest neighbour (-> 640), rotate with affine_grid/grid_sample (nearest),
trunk + head (-> 20 x 20), rotate the score map back (nearest as VPG, or bilinear), upsample bilinearly to
S x S (x16) and crop the padding (-> 224 x 224).

Centring (`layout`): everything rotates about the centre of the padded square, so a rotation of the heightmap is
an exact rotation of the network's input only if the heightmap sits exactly in the middle of the square. The
layout is chosen in closed form (it always exists, for every size) and is, in this order of preference:
  1. centred on whole pixels (S - H and S - W even): VPG's layout, used whenever the stride and zoom allow it;
  2. else, with an even zoom, centred on a half heightmap pixel = a whole zoomed pixel (the heightmap is zoomed
     first and padded in zoomed pixels; the Q maps are read back at the heightmap's pixel centres);
  3. else (odd zoom, and an odd height or width the stride cannot centre): half a pixel off centre in that axis,
     with one extra pixel of padding so the rotated content still fits. Rotations are then exact up to that
     half-pixel shift (the same layout the code always used for heightmaps of mixed parity at zoom 1).

Where a Q map can peak: a bilinearly upsampled map peaks on its cells, so with VPG's order (rotate the 20 x 20
map back, then upsample) every rotation's argmax lies on the same axis-aligned lattice, one trunk cell apart
(3.2 cm for VPG and the fast profile). `back_rotation="upsampled"` upsamples in the rotated frame first and
rotates back at full size: each jaw angle then has its own rotated lattice, and the argmax over angles and
pixels can land between the cells of any one of them.

`input_sampling`: how the trunk's input is resampled from the heightmap. "nearest" is VPG's (zoom and rotate by
nearest neighbour). It leaves a signature of the rotation index in the input (2 x 2 blocks at 0 and 90 degrees,
staircases elsewhere) that the trunk's features carry, so a head trained on grasp outcomes learns per-index
offsets instead of the object's orientation relative to the jaw (docs/learning.md 1.7). "bilinear" samples the
rotated, zoomed grid from the heightmap by bilinear interpolation in one step: every angle looks alike.

`pad="none"` pads only to the stride (112 px -> 112 at zoom 2 for a stride-16 trunk): half the pixels of the
diagonal padding (2x less compute), at the price of the heightmap's corners outside the inscribed circle being
cut off in the rotated views (objects there look like empty table at those angles).

`angle_source`: what may make Q differ between the jaw angles at a pixel. "network" (VPG): each rotation's own
score. "jaw_geometry": the head's score averaged over all R rotations at each heightmap pixel, plus each rotation's
jaw-geometry term, so the head says where to grasp and only the jaw geometry says at which angle. Why: the
key-point labels carry no angle, and what the trunks' features say about it is mostly the rotation index
(docs/learning.md 1.7, 1.9).
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from math import gcd
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grasp_core.jaw_geometry import JawGeometry
from grasp_core.networks import TwoStreamFCN, heightmaps_to_tensors


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 arithmetic (AVX512-BF16 or AMX). Elsewhere torch emulates bf16, which was
    measured 6-20x slower than fp32 for the fast profile on a 2-core AMD EPYC."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


PADDINGS = ("diagonal", "none")
BACK_ROTATIONS = ("nearest", "bilinear", "upsampled")
BACKENDS = ("torch", "onnxruntime")
INPUT_SAMPLINGS = ("nearest", "bilinear")
ANGLE_SOURCES = ("network", "jaw_geometry")


@dataclass(frozen=True)
class InferenceOptions:
    """How to run the R rotations at inference time (results agree up to bf16 rounding)."""

    channels_last: bool = False  # NHWC convolutions (faster on CPU with bf16)
    bf16: bool = False  # torch.autocast("cpu", dtype=torch.bfloat16) for the trunks and head
    chunk_size: int | None = None  # rotations per forward: None = all of one heightmap in one batch, 1 = sequential
    backend: str = "torch"  # "onnxruntime": the trunks in fp32 by grasp_core.ort_trunks, the head in torch

    def __post_init__(self) -> None:
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None (one batch), got {self.chunk_size}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "onnxruntime" and (self.bf16 or self.channels_last):
            raise ValueError("backend 'onnxruntime' runs the trunks in fp32 with its own memory layout: "
                             "bf16 and channels_last are torch options")


def _rotation_matrices(angles: torch.Tensor, inverse: bool) -> torch.Tensor:
    """(N, 2, 3) affine_grid matrices; output pixel p samples the input at R(a) p (R(-a) p if inverse)."""
    c, s = torch.cos(angles), torch.sin(angles)
    if inverse:
        s = -s
    zero = torch.zeros_like(c)
    return torch.stack((torch.stack((c, -s, zero), -1), torch.stack((s, c, zero), -1)), 1)


@dataclass(frozen=True)
class PaddedLayout:
    """A heightmap inside the padded square the network rotates (`RotatingQNetwork.layout`)."""

    side: int  # S, heightmap pixels; S * zoom is divisible by the trunk stride
    zoom: int
    zoomed_top: int  # offsets of the zoomed heightmap in the zoomed square (S * zoom), zoomed pixels
    zoomed_left: int
    centred: bool  # the heightmap's centre is the square's centre: rotations about it are exact

    @classmethod
    def make(cls, side: int, zoom: int, zoomed_top: int, zoomed_left: int, centred: bool) -> "PaddedLayout":
        return cls(int(side), int(zoom), int(zoomed_top), int(zoomed_left), bool(centred))

    @property
    def zoomed_side(self) -> int:
        return self.side * self.zoom

    @staticmethod
    def _pixels(zoomed: int, zoom: int) -> int | float:
        return zoomed // zoom if zoomed % zoom == 0 else zoomed / zoom

    @property
    def top(self) -> int | float:
        """Offset in heightmap pixels (a float ending in .5 when the centring needs half a pixel)."""
        return self._pixels(self.zoomed_top, self.zoom)

    @property
    def left(self) -> int | float:
        return self._pixels(self.zoomed_left, self.zoom)

    @property
    def whole_pixels(self) -> bool:
        return self.zoomed_top % self.zoom == 0 and self.zoomed_left % self.zoom == 0


def _read_back(score: torch.Tensor, layout: PaddedLayout, height: int, width: int) -> torch.Tensor:
    """Score maps (N, C, n, n) over the padded square -> (N, C, H, W) at the heightmap's pixel centres (bilinear)."""
    side = layout.side
    if layout.whole_pixels:  # upsample to S x S and crop (VPG)
        top, left = int(layout.top), int(layout.left)
        score = F.interpolate(score, size=(side, side), mode="bilinear", align_corners=False)
        return score[:, :, top:top + height, left:left + width]
    return _sample_pixel_centres(score, float(layout.top), float(layout.left), side, height, width)


def _sample_pixel_centres(score: torch.Tensor, top: float, left: float, side: int, height: int, width: int
                          ) -> torch.Tensor:
    """Bilinear samples of the score maps at the centres of the heightmap's pixels, which sit at offset (top,
    left) in an S x S square the maps cover: what upsampling to S x S and cropping gives for whole offsets."""
    n = score.shape[0]
    rows = (torch.arange(height, dtype=torch.float64) + (top + 0.5)) * (2.0 / side) - 1.0
    cols = (torch.arange(width, dtype=torch.float64) + (left + 0.5)) * (2.0 / side) - 1.0
    grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), -1)  # (H, W, 2) as (x, y)
    grid = grid.to(device=score.device, dtype=score.dtype).expand(n, height, width, 2)
    # "border" = interpolate's clamping of source indices at the edges
    return F.grid_sample(score, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RotatingQNetwork(nn.Module):
    """Wraps a `TwoStreamFCN` (as `self.fcn`, its only parameters) into an R-rotation Q network."""

    def __init__(self, fcn: TwoStreamFCN, num_rotations: int = 16, zoom: int = 2,
                 back_rotation: str = "nearest", pad: str = "diagonal", input_sampling: str = "nearest",
                 angle_source: str = "network"):
        super().__init__()
        if num_rotations < 1:
            raise ValueError(f"num_rotations must be >= 1, got {num_rotations}")
        if int(zoom) != zoom or zoom < 1:
            raise ValueError(f"zoom must be a positive integer, got {zoom}")
        if back_rotation not in BACK_ROTATIONS:
            raise ValueError(f"back_rotation must be one of {BACK_ROTATIONS} ('nearest' is VPG's), "
                             f"got {back_rotation!r}")
        if pad not in PADDINGS:
            raise ValueError(f"pad must be one of {PADDINGS}, got {pad!r}")
        if input_sampling not in INPUT_SAMPLINGS:
            raise ValueError(f"input_sampling must be one of {INPUT_SAMPLINGS} ('nearest' is VPG's), "
                             f"got {input_sampling!r}")
        self.pad = pad
        self.input_sampling = input_sampling
        self.fcn = fcn
        self.angle_source = "network"
        self.set_angle_source(angle_source)
        self.num_rotations = int(num_rotations)
        self.zoom = int(zoom)
        self.back_rotation = back_rotation
        self._readouts: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # see readout()
        self._sources: dict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = {}  # see _source_taps()

    def geometry(self) -> dict:
        """What a checkpoint records to rebuild this network around its FCN (grasp_core.checkpoint.save_model)."""
        return {"num_rotations": self.num_rotations, "zoom": self.zoom, "back_rotation": self.back_rotation,
                "pad": self.pad, "input_sampling": self.input_sampling, "angle_source": self.angle_source}

    def set_angle_source(self, angle_source: str) -> None:
        """Choose what makes Q differ between angles (module docstring); "jaw_geometry" needs the jaw geometry."""
        if angle_source not in ANGLE_SOURCES:
            raise ValueError(f"angle_source must be one of {ANGLE_SOURCES} ('network' is VPG's), got {angle_source!r}")
        if angle_source == "jaw_geometry" and self.fcn.jaw_geometry is None:
            raise ValueError("angle_source 'jaw_geometry' leaves the angle to the jaw-geometry term, and this network "
                             "has none: call enable_jaw_geometry(resolution_m) first")
        self.angle_source = angle_source

    def enable_jaw_geometry(self, resolution_m: float) -> None:
        """Score the jaw geometry too (grasp_core.jaw_geometry), for heightmaps of `resolution_m` metres per pixel."""
        self.fcn.enable_jaw_geometry(JawGeometry(pixel_m=float(resolution_m) / self.zoom, downsample=self.zoom))

    def angle(self, index: int) -> float:
        """Jaw closing angle (radians) of rotation `index`."""
        if not 0 <= index < self.num_rotations:
            raise ValueError(f"rotation index {index} is not in [0, {self.num_rotations})")
        return index * 2.0 * math.pi / self.num_rotations

    def layout(self, height: int, width: int) -> "PaddedLayout":
        """Where a height x width heightmap sits in the padded square (see the module docstring). Closed form."""
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"heightmap {name} must be a positive integer, got {value!r}")
        height, width, zoom, stride = int(height), int(width), self.zoom, int(self.fcn.stride)
        # the rotated heightmap must fit in the square (VPG), or (pad="none") only the heightmap itself
        base = math.ceil(math.hypot(height, width)) if self.pad == "diagonal" else max(height, width)
        step = stride // gcd(stride, zoom)  # S * zoom is divisible by the stride iff S is a multiple of this
        same_parity = (height - width) % 2 == 0
        if same_parity and (step % 2 == 1 or height % 2 == 0):
            # 1. whole-pixel centring: S a multiple of `step` with the parity of the heightmap's sides
            side = -(-base // step) * step
            if (side - height) % 2:
                side += step  # `step` is odd here, so this fixes the parity
            return PaddedLayout.make(side, zoom, (side - height) * zoom // 2, (side - width) * zoom // 2, True)
        if zoom % 2 == 0:
            # 2. half-pixel centring: the zoomed square T is even (a multiple of zoom), so is zoom * H
            unit = stride * zoom // gcd(stride, zoom)  # T must be a multiple of the stride and of the zoom
            zoomed = -(-base * zoom // unit) * unit
            return PaddedLayout.make(zoomed // zoom, zoom, (zoomed - zoom * height) // 2,
                                     (zoomed - zoom * width) // 2, True)
        # 3. no centred layout exists: half a pixel off in the odd axis, one more pixel so the content fits
        side = -(-(base + 1) // step) * step
        return PaddedLayout.make(side, zoom, (side - height) // 2 * zoom, (side - width) // 2 * zoom, False)

    def padding(self, height: int, width: int) -> tuple[int, int | float, int | float]:
        """(S, top, left): side of the padded square in heightmap pixels and the heightmap's offset in it.

        top and left are integers, except in layout 2 (even zoom, odd sides) where they end in .5.
        """
        layout = self.layout(height, width)
        return layout.side, layout.top, layout.left

    def forward(self, color: torch.Tensor, depth: torch.Tensor, rotations: Sequence[int],
                channels_last: bool = False, backend: str = "torch") -> torch.Tensor:
        """Q logits (N, H, W) for N = len(rotations).

        colour (B, 3, H, W) in [0, 1] and depth (B, 1, H, W) metres, with B = N (one rotation per input,
        e.g. a training batch) or B = 1 (the same heightmap under every rotation; angle_source "jaw_geometry"
        needs this, with all R rotations).
        """
        if self.angle_source != "network" and color.shape[0] != 1:
            raise ValueError(f"angle_source {self.angle_source!r} pools the head over the rotations of one heightmap: "
                             f"give one heightmap (batch 1), got {color.shape[0]}")
        features = self.trunk_features(color, depth, rotations, channels_last, backend)
        return self.q_from_features(features, rotations, color.shape[-2], color.shape[-1])

    def _check_rotations(self, rotations: Sequence[int]) -> list[int]:
        rotations = [int(r) for r in rotations]
        if not rotations:
            raise ValueError("rotations is empty")
        for r in rotations:
            self.angle(r)  # range check
        return rotations

    def trunk_features(self, color: torch.Tensor, depth: torch.Tensor, rotations: Sequence[int],
                       channels_last: bool = False, backend: str = "torch") -> torch.Tensor:
        """The features (N, fcn.feature_channels, h, w) of the padded, zoomed and rotated heightmaps (see
        forward): both trunks', and the jaw-geometry maps of the rotated depth if the FCN scores them.

        backend "onnxruntime" (no gradient, eval-mode BatchNorm) runs the trunks in grasp_core.ort_trunks.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        rotations = self._check_rotations(rotations)
        n = len(rotations)
        if color.dim() != 4 or depth.dim() != 4 or color.shape[0] != depth.shape[0] \
                or color.shape[-2:] != depth.shape[-2:]:
            raise ValueError(f"expected colour (B, 3, H, W) and depth (B, 1, H, W) of one size, "
                             f"got {tuple(color.shape)} and {tuple(depth.shape)}")
        if color.shape[0] not in (1, n):
            raise ValueError(f"batch of {color.shape[0]} heightmaps for {n} rotations: need 1 or {n}")
        height, width = color.shape[-2:]
        zoomed_side = self.layout(height, width).zoomed_side
        taps = [self._source_taps(r, height, width, color.device) for r in rotations]
        sources = torch.stack([t[0] for t in taps])  # (N, P, K): K = 1 (nearest) or 4 (bilinear) pixels
        k = sources.shape[-1]
        weights = torch.stack([t[1] for t in taps]).to(color.dtype) if k > 1 else None
        rotated = []
        for image in (color, depth):  # prepend the zero that padding and out-of-view pixels copy
            channels = image.shape[1]
            flat = F.pad(image.flatten(2), (1, 0)).expand(n, -1, -1)
            picked = flat.gather(2, sources.flatten(1)[:, None, :].expand(-1, channels, -1))
            if k > 1:
                picked = (picked.view(n, channels, -1, k) * weights[:, None]).sum(-1)
            rotated.append(picked.view(n, channels, zoomed_side, zoomed_side))
        color, depth = rotated
        if channels_last:
            color = color.contiguous(memory_format=torch.channels_last)
            depth = depth.contiguous(memory_format=torch.channels_last)
        if backend == "onnxruntime":
            if self.training:
                raise ValueError("backend 'onnxruntime' runs the trunks as at inference (BatchNorm running "
                                 "statistics, no gradient): call it in eval mode")
            from grasp_core import ort_trunks  # imports onnxruntime only when asked for
            return self.fcn.with_geometry(ort_trunks.trunk_features(self.fcn, color, depth), depth)
        return self.fcn.with_geometry(self.fcn.features(color, depth), depth)

    def _zoom_pad_rotate(self, image: torch.Tensor, rotations: list[int]) -> torch.Tensor:
        """(B, C, H, W) -> (N, C, S * zoom, S * zoom): zoomed (nearest), zero-padded to the square and rotated
        (nearest) by -angle for each rotation (VPG's affine_mat_before)."""
        n, (height, width) = len(rotations), image.shape[-2:]
        layout = self.layout(height, width)
        if self.zoom > 1:  # zoom, then pad in zoomed pixels: the same as padding first when offsets are whole
            image = F.interpolate(image, scale_factor=self.zoom, mode="nearest")
        zside, ztop, zleft = layout.zoomed_side, layout.zoomed_top, layout.zoomed_left
        pad = (zleft, zside - self.zoom * width - zleft, ztop, zside - self.zoom * height - ztop)
        image = F.pad(image, pad).expand(n, -1, -1, -1)  # raw zeros = empty cells, as VPG pads before normalising
        angles = torch.tensor([self.angle(r) for r in rotations], dtype=torch.float64)
        before = _rotation_matrices(angles, inverse=False).to(device=image.device, dtype=torch.float32)
        grid = F.affine_grid(before, [n, image.shape[1], *image.shape[-2:]], align_corners=False)
        return F.grid_sample(image, grid, mode="nearest", padding_mode="zeros", align_corners=False)

    def _source_taps(self, rotation: int, height: int, width: int, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(pixels (P, K), weights (P, K) or None for a plain copy): which heightmap pixels (flat index + 1;
        0 = padding) each of the P trunk-input pixels of `rotation` mixes, and how. Found once per (rotation, size).

        nearest (K = 1): zooming, padding and rotating only copy pixels, so they are one gather, found by running
        `_zoom_pad_rotate` on an image of pixel numbers (exact in float32 below 2^24 pixels): 16 rotations were
        ~5x cheaper than interpolate + pad + grid_sample. bilinear (K = 4): the trunk-input pixel's centre, mapped
        back through the rotation and the zoom, is interpolated from its 4 neighbouring heightmap pixels (edge
        pixels repeat up to the heightmap's border; beyond it is padding).
        """
        key = (rotation, int(height), int(width), str(device))
        if key not in self._sources:
            if height * width >= 2 ** 24:
                raise ValueError(f"a {height} x {width} heightmap is too large (2^24 pixels at most)")
            with torch.inference_mode(False):  # normal tensors: later gathers may be differentiated
                if self.input_sampling == "nearest":
                    numbers = torch.arange(1, height * width + 1, dtype=torch.float32, device=device)
                    picked = self._zoom_pad_rotate(numbers.view(1, 1, height, width), [rotation])
                    self._sources[key] = (picked.flatten().round().long()[:, None], None)
                else:
                    self._sources[key] = self._bilinear_taps(rotation, height, width, device)
        return self._sources[key]

    def _bilinear_taps(self, rotation: int, height: int, width: int, device: torch.device
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        layout = self.layout(height, width)
        side = layout.zoomed_side
        angle = torch.tensor([self.angle(rotation)], dtype=torch.float64)
        before = _rotation_matrices(angle, inverse=False)
        grid = F.affine_grid(before, [1, 1, side, side], align_corners=False)[0].reshape(-1, 2)
        zoomed = ((grid + 1.0) * side - 1.0) / 2.0  # zoomed-square pixel coordinates (x, y) of each sample
        x = (zoomed[:, 0] - layout.zoomed_left + 0.5) / self.zoom - 0.5  # heightmap pixel coordinates
        y = (zoomed[:, 1] - layout.zoomed_top + 0.5) / self.zoom - 0.5
        inside = (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)
        x, y = x.clamp(0, width - 1), y.clamp(0, height - 1)
        x0 = x.floor().clamp(max=max(width - 2, 0))  # so that x1 = x0 + 1 is a pixel (weight 1 on x1 at the end)
        y0 = y.floor().clamp(max=max(height - 2, 0))
        fx, fy = x - x0, y - y0
        x0, y0 = x0.long(), y0.long()
        x1, y1 = (x0 + 1).clamp(max=width - 1), (y0 + 1).clamp(max=height - 1)
        pixels = torch.stack([y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1], 1) + 1
        weights = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1)
        pixels[~inside] = 0
        weights[~inside] = 0.0
        return pixels.to(device), weights.float().to(device)

    def q_from_features(self, features: torch.Tensor, rotations: Sequence[int], height: int, width: int
                        ) -> torch.Tensor:
        """Q logits (N, height, width): the head on trunk features, rotated back, upsampled and cropped. With
        angle_source "jaw_geometry" the N maps must be the R rotations of one heightmap, in order."""
        if self.angle_source == "network":
            return self.score_to_q(self.fcn.score(features), rotations, height, width)
        head, geometry = self.q_parts(features, rotations, height, width)
        return self.pool_angles(head[None], geometry[None], rotations)[0]

    def q_parts(self, features: torch.Tensor, rotations: Sequence[int], height: int, width: int
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's and the jaw geometry's terms of `q_from_features` (each (N, height, width); None without
        the geometry), before any pooling over angles."""
        head, geometry = self.fcn.score_parts(features)
        if geometry is None:
            return self.score_to_q(head, rotations, height, width), None
        both = self._scores_to_maps(torch.cat((head, geometry), dim=1), rotations, height, width)  # one resampling
        return both[:, 0], both[:, 1]

    def pool_angles(self, head_q: torch.Tensor, geometry_q: torch.Tensor, rotations: Sequence[int]) -> torch.Tensor:
        """angle_source "jaw_geometry": (B, R, H, W) head and geometry terms -> Q (B, R, H, W) whose head term is
        the same at every angle (its mean over the R rotations)."""
        if list(rotations) != list(range(self.num_rotations)):
            raise ValueError("angle_source 'jaw_geometry' averages the head's score over all "
                             f"{self.num_rotations} rotations of a heightmap: ask for all of them (rotations=None), "
                             f"not {list(rotations)}")
        return head_q.mean(dim=1, keepdim=True) + geometry_q

    def score_to_q(self, score: torch.Tensor, rotations: Sequence[int], height: int, width: int) -> torch.Tensor:
        """Score maps (N, 1, h, w) in the rotated frames -> Q logits (N, height, width) in the heightmap frame."""
        return self._scores_to_maps(score, rotations, height, width)[:, 0]

    def _scores_to_maps(self, score: torch.Tensor, rotations: Sequence[int], height: int, width: int
                        ) -> torch.Tensor:
        """`score_to_q` for C maps per rotation at once: (N, C, h, w) -> (N, C, height, width)."""
        rotations = self._check_rotations(rotations)
        layout = self.layout(height, width)
        score = score.float()
        angles = torch.tensor([self.angle(r) for r in rotations], dtype=torch.float64)
        after = _rotation_matrices(angles, inverse=True).to(device=score.device, dtype=torch.float32)
        if self.back_rotation == "upsampled":  # upsample in the rotated frame, then rotate back at full size
            score = F.interpolate(score, size=(layout.side, layout.side), mode="bilinear", align_corners=False)
            grid = F.affine_grid(after, list(score.shape), align_corners=False)
            score = F.grid_sample(score, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        else:
            grid = F.affine_grid(after, list(score.shape), align_corners=False)
            score = F.grid_sample(score, grid, mode=self.back_rotation, padding_mode="zeros", align_corners=False)
        return _read_back(score, layout, height, width)

    def readout(self, rotations: Sequence[int], pixels: Sequence[tuple[int, int]], height: int, width: int,
                score_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Q[n, v, u] of `score_to_q` as a weighted sum of a few score cells, for each (rotation, pixel (u, v)).

        Returns flat cell indices into the (h, w) score map and their weights, both (N, K), zero-padded. Why: an
        update needs Q at one pixel per map, and reading Q back (rotation, bilinear upsampling, crop) is linear in
        the score map, so the full-size maps need not be made. The weights are the gradient of `score_to_q` at
        that pixel, found once per (rotation, pixel, sizes) and kept: they are its exact coefficients.
        """
        rotations = self._check_rotations(rotations)
        if len(pixels) != len(rotations):
            raise ValueError(f"{len(pixels)} pixels for {len(rotations)} rotations")
        h, w = (int(x) for x in score_size)
        keys = []
        for r, (u, v) in zip(rotations, pixels):
            if not (0 <= int(u) < width and 0 <= int(v) < height):
                raise ValueError(f"pixel (u, v) = ({u}, {v}) is outside the {width} x {height} heightmap")
            keys.append((r, int(u), int(v), height, width, h, w))
        missing = list(dict.fromkeys(k for k in keys if k not in self._readouts))
        if missing:
            with torch.inference_mode(False), torch.enable_grad():
                zeros = torch.zeros(len(missing), 1, h, w, requires_grad=True)
                q = self.score_to_q(zeros, [k[0] for k in missing], height, width)
                picked = q[torch.arange(len(missing)), [k[2] for k in missing], [k[1] for k in missing]]
                (weights,) = torch.autograd.grad(picked.sum(), zeros)
            for key, cell_weights in zip(missing, weights.reshape(len(missing), -1)):
                cells = torch.nonzero(cell_weights).flatten()
                self._readouts[key] = (cells, cell_weights[cells])
        width_k = max(1, *(len(self._readouts[k][0]) for k in keys))
        cells = torch.zeros(len(keys), width_k, dtype=torch.long)
        weights = torch.zeros(len(keys), width_k)
        for n, key in enumerate(keys):
            index, weight = self._readouts[key]
            cells[n, :len(index)] = index
            weights[n, :len(index)] = weight
        return cells, weights

    @torch.no_grad()
    def q_maps(self, color: torch.Tensor, depth: torch.Tensor,
               options: InferenceOptions = InferenceOptions(), rotations: Sequence[int] | None = None,
               pool_angles: bool = True) -> torch.Tensor:
        """All (or the given) rotations of one heightmap, (R, H, W) float32, in eval mode (BN running stats).

        With `options.channels_last` the network's weights are converted to channels_last once (in place).
        `pool_angles=False`: each rotation's own score even under angle_source "jaw_geometry" (what a check of a
        few rotations can compute without the others).
        """
        if color.shape[0] != 1:
            raise ValueError(f"q_maps takes one heightmap (batch 1), got a batch of {color.shape[0]}: use "
                             "q_maps_many for several")
        return self.q_maps_many(color, depth, options, rotations, pool_angles)[0]

    @torch.no_grad()
    def q_maps_many(self, color: torch.Tensor, depth: torch.Tensor,
                    options: InferenceOptions = InferenceOptions(), rotations: Sequence[int] | None = None,
                    pool_angles: bool = True) -> torch.Tensor:
        """(B, R, H, W) float32 for B heightmaps of one size (colour (B, 3, H, W), depth (B, 1, H, W)), in eval mode.

        Why: one call for the requests that wait for the model together. Their (heightmap, rotation) inputs run
        in order, `options.chunk_size` per forward (None: the R rotations of one heightmap); a chunk size that
        divides R gives every heightmap exactly the forwards `q_maps` runs, so its maps are bitwise the same.
        """
        if color.dim() != 4 or depth.dim() != 4 or color.shape[0] != depth.shape[0] or color.shape[0] < 1:
            raise ValueError(f"expected colour (B, 3, H, W) and depth (B, 1, H, W) with B >= 1 heightmaps, got "
                             f"{tuple(color.shape)} and {tuple(depth.shape)}")
        rotations = list(range(self.num_rotations)) if rotations is None else list(rotations)
        inputs = [(k, r) for k in range(color.shape[0]) for r in rotations]
        if options.channels_last:
            self.to(memory_format=torch.channels_last)
        chunk = options.chunk_size or len(rotations)
        was_training = self.training
        self.eval()
        try:
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if options.bf16 else nullcontext()
            pooled = self.angle_source != "network" and pool_angles
            outputs, geometry_outputs = [], []
            with autocast:
                for start in range(0, len(inputs), chunk):
                    part = inputs[start:start + chunk]
                    first, last = part[0][0], part[-1][0]
                    if first == last:  # one heightmap under every rotation of the chunk (B = 1 in forward)
                        part_color, part_depth = color[first:first + 1], depth[first:first + 1]
                    else:
                        index = torch.tensor([k for k, _ in part], device=color.device)
                        part_color, part_depth = color[index], depth[index]
                    part_rotations = [r for _, r in part]
                    features = self.trunk_features(part_color, part_depth, part_rotations,
                                                   options.channels_last, options.backend)
                    if not pooled:
                        outputs.append(self.score_to_q(self.fcn.score(features), part_rotations,
                                                       *color.shape[-2:]).float())
                        continue
                    head, geometry = self.q_parts(features, part_rotations, *color.shape[-2:])
                    outputs.append(head.float())
                    geometry_outputs.append(geometry.float())
        finally:
            self.train(was_training)
        shape = (color.shape[0], len(rotations), *color.shape[-2:])
        if pooled:
            return self.pool_angles(torch.cat(outputs, 0).view(shape), torch.cat(geometry_outputs, 0).view(shape),
                                    rotations)
        return torch.cat(outputs, 0).view(shape)

    def predict(self, color_hm: np.ndarray, depth_hm: np.ndarray,
                options: InferenceOptions = InferenceOptions()) -> np.ndarray:
        """Heightmaps (uint8 (H, W, 3), float (H, W) m) -> Q maps float32 (R, H, W) as numpy."""
        return self.predict_many([(color_hm, depth_hm)], options)[0]

    def predict_many(self, heightmaps: Sequence[tuple[np.ndarray, np.ndarray]],
                     options: InferenceOptions = InferenceOptions()) -> list[np.ndarray]:
        """`predict` for several (colour, depth) heightmaps at once: heightmaps of one size run together
        (`q_maps_many`); the Q maps come back in the given order."""
        if not heightmaps:
            raise ValueError("predict_many needs at least one heightmap")
        tensors = [heightmaps_to_tensors(color_hm, depth_hm) for color_hm, depth_hm in heightmaps]
        device = next(self.parameters()).device
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, (color, _) in enumerate(tensors):
            by_size.setdefault(tuple(color.shape[-2:]), []).append(i)
        q_maps: list[np.ndarray | None] = [None] * len(tensors)
        for indices in by_size.values():
            color = torch.cat([tensors[i][0] for i in indices]).to(device)
            depth = torch.cat([tensors[i][1] for i in indices]).to(device)
            for i, q in zip(indices, self.q_maps_many(color, depth, options).cpu().numpy()):
                q_maps[i] = q
        return q_maps
