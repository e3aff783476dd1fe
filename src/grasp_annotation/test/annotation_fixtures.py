"""Small synthetic key-point datasets for the tests: boxes of known size on an empty table."""
from __future__ import annotations

import numpy as np

from grasp_core.dataset import KeypointSample, save_dataset
from grasp_core.workspace import WorkspaceLimits

# 80 x 64 heightmap pixels, 2 mm each.
WORKSPACE = WorkspaceLimits(0.0, 0.16, 0.0, 0.128, 0.0, 0.3, 0.002)
TABLE_RGB = (90, 90, 95)
# (u0, v0, u1, v1) boxes, [u0, u1) x [v0, v1): a 12 x 12 box (sigma 6) and a 20 x 8 box (sigma 4).
BOXES = [(10, 10, 22, 22), (40, 30, 60, 38)]


def scene(boxes=BOXES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = WORKSPACE.shape
    color = np.empty((h, w, 3), np.uint8)
    color[:] = TABLE_RGB
    depth = np.zeros((h, w), np.float32)
    for u0, v0, u1, v1 in boxes:
        color[v0:v1, u0:u1] = rng.integers(120, 255, size=3)
        depth[v0:v1, u0:u1] = 0.03
    return color, depth


def make_dataset(path, num_samples: int = 3, annotated: bool = False):
    """`num_samples` scenes; with `annotated`, every box gets its centre and a fitting sigma."""
    samples = []
    for i in range(num_samples):
        color, depth = scene(seed=i)
        points = [((u0 + u1 - 1) / 2, (v0 + v1 - 1) / 2) for u0, v0, u1, v1 in BOXES] if annotated else []
        sigmas = [min(u1 - u0, v1 - v0) / 2 for u0, v0, u1, v1 in BOXES] if annotated else []
        samples.append(KeypointSample(f"{i:06d}", color, depth, np.array(points, float).reshape(-1, 2), sigmas))
    return save_dataset(path, samples, WORKSPACE, camera={"source": "test"})
