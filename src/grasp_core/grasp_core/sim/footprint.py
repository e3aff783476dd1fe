"""An object's key point as a person would click it: the centre of its top-down footprint and a covering sigma.

The seed's labels are one click at the rough geometric centre of each object plus a sigma about the distance
to its edge. Here the centre is the centroid of the object's top-down footprint (the convex hull of its
points projected onto the table) and sigma the radius of the disc with the footprint's area. GraspWorld labels
its objects with it (`ground_truth_keypoints`); grasp_core.sim.keypoints turns whole scenes into a dataset.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from grasp_core.workspace import WorkspaceLimits


def footprint_keypoint(world_points: np.ndarray, workspace: WorkspaceLimits) -> tuple[tuple[float, float], float]:
    """((u, v), sigma) in heightmap pixels of an object whose surface points (N, 3) are given in the world."""
    pts = np.asarray(world_points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 3 or not np.all(np.isfinite(pts)):
        raise ValueError(f"need at least 3 finite (x, y, z) points, got shape {pts.shape}")
    pixels = np.stack([(pts[:, 0] - workspace.x_min) / workspace.resolution,
                       (pts[:, 1] - workspace.y_min) / workspace.resolution], axis=1).astype(np.float32)
    hull = cv2.convexHull(pixels)
    moments = cv2.moments(hull)
    if moments["m00"] <= 1e-9:  # degenerate (a line): fall back to the points' mean and spread
        centre = pixels.mean(axis=0)
        return (float(centre[0]), float(centre[1])), float(max(1.0, np.linalg.norm(pixels - centre, axis=1).max()))
    centre = (moments["m10"] / moments["m00"], moments["m01"] / moments["m00"])
    return (float(centre[0]), float(centre[1])), float(math.sqrt(moments["m00"] / math.pi))
