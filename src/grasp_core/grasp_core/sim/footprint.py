"""An object's key point as a person would click it: the point of its top-down footprint deepest inside it.

The seed's labels are one click per object on a graspable spot, plus a sigma about the object's size. For a
convex block the footprint's centre is that spot, but the centroid of an L-, T- or U-shaped object (and of many
of the irregular random objects) can lie beside it or on a thin arm. A person clicks where a jaw centred there
closes on material on both sides: the footprint point farthest from its edge (the centre of its largest
inscribed circle). For convex shapes it is at or near the centroid, so block labels barely move. The footprint
is the union of the object's convex parts projected onto the table (each part's projection is the convex hull
of its points), rasterised at a quarter of a heightmap pixel. Sigma is the radius of the disc with the
footprint's area: the coarse label covers the object. GraspWorld labels its objects with it
(`ground_truth_keypoints`); grasp_core.sim.keypoints turns whole scenes into a dataset.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from grasp_core.workspace import WorkspaceLimits

SUBPIXELS = 4  # raster cells per heightmap pixel (per axis)


def footprint_keypoint(world_parts, workspace: WorkspaceLimits) -> tuple[tuple[float, float], float]:
    """((u, v), sigma) in heightmap pixels of an object given as its parts' surface points (each (N, 3), world),
    or as one (N, 3) array (one convex part)."""
    parts = [np.asarray(world_parts, dtype=np.float64)] if isinstance(world_parts, np.ndarray) \
        else [np.asarray(p, dtype=np.float64) for p in world_parts]
    if not parts or any(p.ndim != 2 or p.shape[1] != 3 or not np.all(np.isfinite(p)) for p in parts) \
            or sum(len(p) for p in parts) < 3:
        raise ValueError("need parts of finite (x, y, z) points, at least 3 in all, got shapes "
                         f"{[np.shape(p) for p in parts]}")
    pixels = [np.stack([(p[:, 0] - workspace.x_min) / workspace.resolution,
                        (p[:, 1] - workspace.y_min) / workspace.resolution], axis=1) for p in parts]
    every = np.concatenate(pixels)
    origin = np.floor(every.min(axis=0)) - 2
    size = (np.ceil((every.max(axis=0) - origin + 2) * SUBPIXELS)).astype(int)
    mask = np.zeros((size[1], size[0]), np.uint8)
    for px in pixels:
        hull = cv2.convexHull(((px - origin) * SUBPIXELS).astype(np.float32)).reshape(-1, 2)
        cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1)
    area = float(mask.sum()) / SUBPIXELS ** 2
    if area < 1.0:  # degenerate (a line seen from above): the points' mean and spread
        centre = every.mean(axis=0)
        return (float(centre[0]), float(centre[1])), float(max(1.0, np.linalg.norm(every - centre, axis=1).max()))
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # The deepest points form a ridge on elongated shapes (a rectangle's middle segment): of those within a
    # quarter pixel of the deepest, the one nearest the footprint's centroid.
    rows, cols = np.nonzero(inside >= inside.max() - 1.0)
    m_rows, m_cols = np.nonzero(mask)
    nearest = int(np.argmin((rows - m_rows.mean()) ** 2 + (cols - m_cols.mean()) ** 2))
    centre = origin + (np.array([cols[nearest], rows[nearest]]) + 0.5) / SUBPIXELS
    return (float(centre[0]), float(centre[1])), float(math.sqrt(area / math.pi))
