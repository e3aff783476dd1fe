"""A D435-like depth sensor: what an Intel RealSense D435 does to a clean z-depth image (ROS-free, numpy + OpenCV).

The D435 is an active stereo pair (two IR imagers 50 mm apart, a pattern projector between them); its depth is
`z = f * B / disparity`, so an error of `e` pixels of disparity is `z^2 * e / (f * B)` metres of depth. The model
applies, to the aligned depth image the simulated camera renders (the colour camera's pixels):

1. Per-pixel noise: Gaussian, sigma(z) = z^2 * subpixel / (focal_px * baseline). This is Intel's D400 depth-RMS
   formula, "Depth RMS error (mm) = Distance(mm)^2 x Subpixel / (focal length (pixels) x Baseline (mm))", from
   "Tuning Depth Cameras for Best Performance" (Intel RealSense documentation, section "Verify performance regularly
   on a flat wall or target"); Intel advises subpixel ~0.08 for a well-calibrated unit (librealsense issue #3904).
   With the D435's depth focal length at 848x480 (87 deg field of view: 424 / tan(43.5 deg) = 447 px) that is
   0.9 mm at 0.5 m, 1.6 mm at the simulated camera's 0.665 m and 3.6 mm at 1 m.
2. Correlated noise: a smooth random field (coarse Gaussian nodes every `correlated_cell_px` pixels, upsampled
   bicubically, scaled to RMS `correlated_subpixel` of disparity over the image), also through z^2 / (f B):
   ~2 mm at 0.665 m. On a D400 this low-frequency error is mostly the unit's fixed pattern (calibration, lens), so
   the simulated camera draws it once and keeps it (`correlated_field`), while the per-pixel part is new every frame.
3. Holes (depth 0 = no return, as realsense2_camera publishes):
   - stereo shadows: a surface seen by the left imager (the depth origin) but hidden from the right one by a nearer
     edge has no depth. The right imager sits `baseline` along +x (image right), so the shadow is a band on the
     left (-u) side of every near edge, as wide as the disparity step, computed exactly from the clean depth;
   - depth edges: pixels within `edge_width_px` of a jump larger than `edge_jump` between neighbours lose their
     depth with probability `edge_hole_probability` (stereo matching fails across a discontinuity);
   - random holes: small disks (radius 1..`random_hole_radius_px`) covering `random_hole_fraction` of the image
     (specular or textureless patches).
   The D435's invalid band at the left border of its own depth image is not modelled: its depth field of view
   (87 deg) is wider than the colour one (69 deg), so aligned to colour the band is out of view.
4. Quantisation to 1 mm (16UC1 millimetres).

`noisy_depth_mm` is a pure function of the clean depth, the generator and the config (and the fixed pattern, when
given), so the same seed gives the same frame bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MAX_DEPTH_MM = 65535


@dataclass(frozen=True)
class DepthNoiseConfig:
    """A D435-like depth error model (see the module docstring). Lengths in metres, disparities in pixels of the
    depth imagers (`focal_px`), hole widths in pixels of the aligned image."""

    baseline: float = 0.050            # m between the two IR imagers (D435)
    focal_px: float = 447.0            # depth imagers' focal length, px (848x480 at 87 deg HFOV)
    subpixel: float = 0.08             # px RMS per-pixel disparity error (Intel: ~0.08; 0 = none)
    correlated_subpixel: float = 0.1   # px RMS of the smooth disparity error field (0 = none)
    correlated_cell_px: int = 80       # aligned-image pixels between the field's random nodes
    shadows: bool = True               # stereo-occlusion holes beside near edges
    edge_jump: float = 0.01            # m: neighbouring pixels further apart in depth than this are a depth edge
    edge_width_px: int = 1             # pixels each side of a depth edge that may lose their depth
    edge_hole_probability: float = 0.3  # chance that such a pixel has no depth, per frame
    random_hole_fraction: float = 0.002  # fraction of the image covered by random hole disks
    random_hole_radius_px: int = 3     # largest random hole disk radius (radii 1..this, uniform)

    def __post_init__(self) -> None:
        def number(name, low, high=math.inf, low_open=False):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                and (value > low if low_open else value >= low) and value <= high
            if not ok:
                bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high < math.inf else "")
                raise ValueError(f"DepthNoiseConfig.{name} must be a finite number {bound}, got {value!r}")

        number("baseline", 0.0, low_open=True)
        number("focal_px", 0.0, low_open=True)
        for name in ("subpixel", "correlated_subpixel", "edge_jump"):
            number(name, 0.0)
        number("edge_hole_probability", 0.0, 1.0)
        number("random_hole_fraction", 0.0, 0.5)
        for name, low in (("correlated_cell_px", 2), ("edge_width_px", 0), ("random_hole_radius_px", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"DepthNoiseConfig.{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.shadows, bool):
            raise ValueError(f"DepthNoiseConfig.shadows must be true or false, got {self.shadows!r}")

    def metres_per_disparity_px(self, z) -> np.ndarray:
        """d z / d disparity at depth z: an error of e px of disparity is e * this metres of depth."""
        return np.square(z) / (self.focal_px * self.baseline)

    def pixel_sigma(self, z) -> np.ndarray:
        """Standard deviation (m) of the per-pixel noise at depth z (m): z^2 * subpixel / (focal_px * baseline)."""
        return self.subpixel * self.metres_per_disparity_px(z)

    def correlated_sigma(self, z) -> np.ndarray:
        """RMS (m) of the correlated noise at depth z (m)."""
        return self.correlated_subpixel * self.metres_per_disparity_px(z)


def correlated_field(rng: np.random.Generator, shape: tuple[int, int], config: DepthNoiseConfig) -> np.ndarray:
    """A smooth random disparity error (px), float64 (H, W), zero mean and RMS `correlated_subpixel` over the image."""
    height, width = shape
    if config.correlated_subpixel == 0:
        return np.zeros(shape)
    cell = config.correlated_cell_px
    nodes = rng.standard_normal((height // cell + 2, width // cell + 2))
    # Nodes span a little more than the image so its borders are as smooth as its middle.
    field = cv2.resize(nodes, ((width // cell + 2) * cell, (height // cell + 2) * cell),
                       interpolation=cv2.INTER_CUBIC)[cell // 2:cell // 2 + height, cell // 2:cell // 2 + width]
    field = field - field.mean()
    rms = float(np.sqrt(np.mean(np.square(field))))
    return field * (config.correlated_subpixel / rms) if rms > 0 else field


def stereo_shadow(depth_m: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """Pixels (bool (H, W)) the left imager sees but a right imager `baseline` along +x cannot: hidden behind a
    nearer surface to their right. Pixel u at disparity d appears at u - d on the right image, so it is hidden when
    some pixel to its right on the same row has d' - u' >= d - u (and is nearer). Invalid (0) pixels cast none."""
    depth = np.asarray(depth_m, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    disparity = np.where(valid, np.float32(fx * baseline) / np.where(valid, depth, np.float32(1)), -np.inf)
    shifted = disparity - np.arange(depth.shape[1], dtype=np.float32)
    # Largest shifted disparity strictly to the right of each pixel (a flat surface's falls by ~1 px per pixel).
    right_max = np.full(depth.shape, -np.inf, dtype=np.float32)
    right_max[:, :-1] = np.maximum.accumulate(shifted[:, :0:-1], axis=1)[:, ::-1]
    return valid & (right_max > shifted + np.float32(1e-3))


def depth_edges(depth_m: np.ndarray, jump: float, width_px: int) -> np.ndarray:
    """Pixels (bool (H, W)) within `width_px` of a neighbour pair (4-connected) whose depths differ by more than
    `jump`, or of an invalid pixel next to a valid one. width_px = 0: none."""
    if width_px == 0:
        return np.zeros(depth_m.shape, dtype=bool)
    depth = np.where(np.isfinite(depth_m) & (depth_m > 0), depth_m, 0.0).astype(np.float32)
    edge = np.zeros(depth.shape, dtype=bool)
    for axis in (0, 1):
        a = depth[:-1] if axis == 0 else depth[:, :-1]
        b = depth[1:] if axis == 0 else depth[:, 1:]
        step = (np.abs(a - b) > jump) | ((a > 0) != (b > 0))
        if axis == 0:
            edge[:-1] |= step
            edge[1:] |= step
        else:
            edge[:, :-1] |= step
            edge[:, 1:] |= step
    if width_px > 1:
        kernel = np.ones((2 * width_px - 1, 2 * width_px - 1), np.uint8)
        edge = cv2.dilate(edge.astype(np.uint8), kernel).astype(bool)
    return edge


def random_holes(rng: np.random.Generator, shape: tuple[int, int], config: DepthNoiseConfig) -> np.ndarray:
    """Random hole disks (bool (H, W)) covering about `random_hole_fraction` of the image."""
    height, width = shape
    mask = np.zeros(shape, dtype=np.uint8)
    if config.random_hole_fraction == 0:
        return mask.astype(bool)
    radii = np.arange(1, config.random_hole_radius_px + 1)
    mean_area = float(np.mean([np.count_nonzero(cv2.circle(np.zeros((2 * r + 1,) * 2, np.uint8), (r, r), r, 1, -1))
                               for r in radii]))
    count = rng.poisson(config.random_hole_fraction * height * width / mean_area)
    centres_u = rng.integers(0, width, count)
    centres_v = rng.integers(0, height, count)
    disk_radii = rng.integers(1, config.random_hole_radius_px + 1, count)
    for u, v, r in zip(centres_u.tolist(), centres_v.tolist(), disk_radii.tolist()):
        cv2.circle(mask, (u, v), r, 1, -1)
    return mask.astype(bool)


def noisy_depth_mm(depth_m: np.ndarray, rng: np.random.Generator, config: DepthNoiseConfig, fx: float,
                   correlated: np.ndarray | None = None) -> np.ndarray:
    """Clean z-depth float (H, W) metres (0, NaN or inf = no return) -> what a D435 publishes: uint16 (H, W) mm,
    0 = no return.

    `fx`: the aligned image's focal length in pixels (sets the shadow widths). `correlated`: the correlated
    disparity error (px, (H, W)), e.g. a camera's fixed `correlated_field`; None draws a fresh one from `rng`.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"depth must be a 2-D float image in metres, got {depth.dtype} {depth.shape}")
    if not (isinstance(fx, (int, float, np.floating)) and math.isfinite(fx) and fx > 0):
        raise ValueError(f"fx must be the aligned image's positive focal length in pixels, got {fx!r}")
    if correlated is None:
        correlated = correlated_field(rng, depth.shape, config)
    elif np.shape(correlated) != depth.shape:
        raise ValueError(f"correlated field shape {np.shape(correlated)} differs from the depth image's {depth.shape}")
    depth = depth.astype(np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    clean = np.where(valid, depth, 0.0)

    disparity_error = config.subpixel * rng.standard_normal(depth.shape) + correlated
    noisy = clean + config.metres_per_disparity_px(clean) * disparity_error

    holes = ~valid
    if config.shadows:
        holes |= stereo_shadow(clean, fx, config.baseline)
    if config.edge_hole_probability > 0:
        edges = depth_edges(clean, config.edge_jump, config.edge_width_px)
        holes |= edges & (rng.random(depth.shape) < config.edge_hole_probability)
    holes |= random_holes(rng, depth.shape, config)

    depth_mm = np.clip(np.rint(noisy * 1000.0), 1, MAX_DEPTH_MM)
    return np.where(holes | (noisy <= 0), 0, depth_mm).astype(np.uint16)
