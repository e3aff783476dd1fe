"""Coarse affordance labels from clicked key points (seed III-A, Eq. 2-3).

Each clicked object centre (u_i, v_i) with spread sigma_i (pixels) adds a 2-D Gaussian
    y_i(u, v) = 1 / (2 pi sigma_i^2) * exp(-((v - v_i)^2 + (u - u_i)^2) / (2 sigma_i^2)),
and the label is Y = norm(sum_i y_i). The seed does not spell out `norm`; here it divides by the maximum, so the
peak of the map is exactly 1 and values stay in [0, 1] (the seed's range). The 1 / (2 pi sigma^2) factor is kept
before normalising, so a small object peaks higher than a large one, as in the seed's formula.
"""
from __future__ import annotations

import cv2
import numpy as np


def _check_points(points, sigmas, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(points, dtype=np.float64)
    if pts.size == 0:
        pts = pts.reshape(0, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"key points must be given as [[u, v], ...], got shape {pts.shape}")
    sig = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if len(pts) != len(sig):
        raise ValueError(f"got {len(pts)} key points but {len(sig)} sigmas")
    if not (np.all(np.isfinite(pts)) and np.all(np.isfinite(sig)) and np.all(sig > 0)):
        raise ValueError(f"key points must be finite and sigmas finite and > 0, got points {pts.tolist()}, "
                         f"sigmas {sig.tolist()}")
    h, w = shape
    outside = (pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)
    if np.any(outside):
        raise ValueError(f"key points {pts[outside].tolist()} lie outside the {w}x{h} (u < width, v < height) image")
    return pts, sig


def affordance_label(shape: tuple[int, int], points, sigmas) -> np.ndarray:
    """Label map float32 (H, W) in [0, 1] for key points [[u, v], ...] (u = column, v = row) and sigmas (pixels).

    No key points (an empty scene) gives an all-zero map: nothing is graspable.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f"label shape must be (height, width) with positive sizes, got {shape}")
    pts, sig = _check_points(points, sigmas, shape)
    if len(pts) == 0:
        return np.zeros(shape, dtype=np.float32)
    v = np.arange(shape[0], dtype=np.float64)[None, :, None]
    u = np.arange(shape[1], dtype=np.float64)[None, None, :]
    u_i, v_i, s_i = pts[:, 0, None, None], pts[:, 1, None, None], sig[:, None, None]
    gaussians = np.exp(-((v - v_i) ** 2 + (u - u_i) ** 2) / (2 * s_i ** 2)) / (2 * np.pi * s_i ** 2)
    total = gaussians.sum(axis=0)
    return (total / total.max()).astype(np.float32)


def estimate_sigma(depth_hm: np.ndarray, point, height_threshold: float = 0.005) -> float:
    """Sigma (pixels) for a key point: how far the clicked object's inside lies from its edge.

    The object is the 8-connected region of cells higher than `height_threshold` (metres above z_min) that
    contains the point. Sigma is the largest distance from any cell of that region to its edge (the radius of
    the biggest inscribed disc: a disc's radius, a box's half short side), so a click a few pixels off the
    centre gives the same value. Objects that touch merge into one region and get one larger sigma.
    """
    depth_hm = np.asarray(depth_hm)
    if depth_hm.ndim != 2:
        raise ValueError(f"depth heightmap must be 2-D, got shape {depth_hm.shape}")
    pts, _ = _check_points([point], [1.0], depth_hm.shape)
    u, v = pts[0]
    row, col = int(v), int(u)
    occupied = (depth_hm > height_threshold).astype(np.uint8)
    if not occupied[row, col]:
        raise ValueError(f"key point (u={u:g}, v={v:g}) is on the empty table (height {depth_hm[row, col]:.4f} m "
                         f"<= {height_threshold} m): click on an object")
    _, regions = cv2.connectedComponents(occupied, connectivity=8)
    region = (regions == regions[row, col]).astype(np.uint8)
    # Pad so the image border counts as an edge. Distances run from object cell centres to the nearest table
    # cell centre, so the result is the half-size within half a pixel (a 20-pixel-wide box gives 10).
    distance = cv2.distanceTransform(np.pad(region, 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return float(distance.max())
