"""RGB-D camera image -> top-down colour and depth heightmaps of the workspace (VPG's `utils.get_heightmap`).

Every valid depth pixel is back-projected with the intrinsics, moved into the robot base frame with the camera
pose, kept if it falls inside the workspace's xy cells and below z_max, and projected straight down. Each cell
keeps its highest point (VPG sorts the points by z and lets the last write win; `np.maximum.at` gives the
same answer deterministically). Heights are metres above z_min; points below z_min (table noise) count as
height 0, as in VPG, and keep their colour.

Holes. A cell no valid point reached (a D435's no-return pixels: stereo shadows beside tall edges, depth edges,
specular patches; or the table the camera cannot see behind an object) is unobserved: no data, never "table".
`fill_unobserved` gives it the height and colour of the nearest observed cell (Euclidean distance; ties broken by
scipy's fixed scan order, so the same input always gives the same heightmap). A hole inside an object's top so
becomes that top, and a shadow between an object and the table is shared between the two, each side taking the
half nearest to it. VPG fills unobserved cells with 0 (`valid_depth_heightmap[np.isnan(...)] = 0` in its
main.py): on a real camera that digs false gaps into objects where the policy learns to put a finger, and would
call a hole "table" to the empty-workspace test. Only a frame with no observed cell at all stays 0 everywhere.
`make_heightmap` projects and fills; `project_heightmap` also returns which cells were observed (the heightmap
node logs their fraction).
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.ndimage import distance_transform_edt

from grasp_core.workspace import WorkspaceLimits


def _check_intrinsics(intrinsics) -> np.ndarray:
    k = np.asarray(intrinsics, dtype=np.float64)
    if k.shape != (3, 3) or not np.all(np.isfinite(k)):
        raise ValueError(f"camera intrinsics must be a finite 3x3 matrix K, got shape {k.shape}")
    if k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0.0, 0.0, 1.0]) or k[1, 0] != 0:
        raise ValueError(f"camera intrinsics are not a pinhole K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]] "
                         f"with fx, fy > 0: {k.tolist()}")
    return k


def _check_pose(camera_pose) -> np.ndarray:
    t = np.asarray(camera_pose, dtype=np.float64)
    if t.shape != (4, 4) or not np.all(np.isfinite(t)):
        raise ValueError(f"camera pose must be a finite 4x4 homogeneous transform, got shape {t.shape}")
    r = t[:3, :3]
    if not np.allclose(t[3], [0.0, 0.0, 0.0, 1.0]) or not np.allclose(r @ r.T, np.eye(3), atol=1e-4) \
            or np.linalg.det(r) < 0:
        raise ValueError(f"camera pose is not a rigid transform (last row [0 0 0 1], proper rotation): {t.tolist()}")
    return t


@functools.lru_cache(maxsize=4)
def _cell_rays(k_bytes: bytes, pose_bytes: bytes, image_shape: tuple[int, int], workspace: WorkspaceLimits):
    """Per-pixel (slope, offset) pairs so that cell u = slope * depth + offset (likewise v), z in metres."""
    k = np.frombuffer(k_bytes).reshape(3, 3)
    pose = np.frombuffer(pose_bytes).reshape(4, 4)
    rows, cols = np.divmod(np.arange(image_shape[0] * image_shape[1]), image_shape[1])
    # Pinhole model u = fx x/z + s y/z + cx, v = fy y/z + cy, at z = 1.
    y1 = (rows - k[1, 2]) / k[1, 1]
    x1 = (cols - k[0, 2] - k[0, 1] * y1) / k[0, 0]
    r, t = pose[:3, :3], pose[:3, 3]
    ray = [r[i, 0] * x1 + r[i, 1] * y1 + r[i, 2] for i in range(3)]
    res = workspace.resolution
    return ((ray[0] / res, (t[0] - workspace.x_min) / res),
            (ray[1] / res, (t[1] - workspace.y_min) / res),
            (ray[2], t[2]))


def depth_image_from_16uc1(depth_mm: np.ndarray) -> np.ndarray:
    """A 16UC1 depth image in millimetres (RealSense) -> float32 metres; 0 (no return) stays 0 = invalid."""
    depth_mm = np.asarray(depth_mm)
    if depth_mm.dtype != np.uint16 or depth_mm.ndim != 2:
        raise ValueError(f"expected a 2-D uint16 depth image in millimetres, got {depth_mm.dtype} {depth_mm.shape}")
    return depth_mm.astype(np.float32) * np.float32(0.001)


def make_heightmap(color: np.ndarray, depth: np.ndarray, intrinsics, camera_pose,
                   workspace: WorkspaceLimits) -> tuple[np.ndarray, np.ndarray]:
    """Colour image uint8 (h, w, 3) RGB + z-depth float (h, w) metres -> (colour uint8 (H, W, 3), depth float32 (H, W)).

    `camera_pose` maps camera-optical coordinates (x right, y down, z forward) to the base frame. Depth values
    that are 0, NaN or inf are invalid and never projected; cells no valid point reached are filled from the
    nearest observed cell (see the module docstring). (H, W) = workspace.shape.
    """
    color_hm, depth_hm, observed = project_heightmap(color, depth, intrinsics, camera_pose, workspace)
    return fill_unobserved(color_hm, depth_hm, observed)


def fill_unobserved(color_hm: np.ndarray, depth_hm: np.ndarray,
                    observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heightmaps with every unobserved cell given the colour and height of its nearest observed cell (new arrays).
    With no observed cell at all, both stay as they are (zeros from project_heightmap)."""
    observed = np.asarray(observed, dtype=bool)
    if observed.shape != depth_hm.shape or color_hm.shape[:2] != depth_hm.shape:
        raise ValueError(f"observed mask {observed.shape}, depth {depth_hm.shape} and colour {color_hm.shape} "
                         "heightmaps must have the same (H, W)")
    if observed.all() or not observed.any():
        return color_hm.copy(), depth_hm.copy()
    rows, cols = distance_transform_edt(~observed, return_distances=False, return_indices=True)
    return color_hm[rows, cols], depth_hm[rows, cols]


def project_heightmap(color: np.ndarray, depth: np.ndarray, intrinsics, camera_pose,
                      workspace: WorkspaceLimits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As make_heightmap, without filling: (colour uint8 (H, W, 3), depth float32 (H, W), observed bool (H, W)),
    unobserved cells 0 (black)."""
    color = np.asarray(color)
    depth = np.asarray(depth)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"depth must be a 2-D float image in metres, got {depth.dtype} {depth.shape} "
                         "(convert 16UC1 millimetres with depth_image_from_16uc1)")
    if color.dtype != np.uint8 or color.shape != depth.shape + (3,):
        raise ValueError(f"color must be uint8 {depth.shape + (3,)} to match the depth image, "
                         f"got {color.dtype} {color.shape}")
    k = _check_intrinsics(intrinsics)
    pose = _check_pose(camera_pose)
    height, width = workspace.shape

    # Base-frame point of pixel p = t + depth[p] * ray[p]; the rays depend only on K, pose and image size
    # (a fixed camera reuses them), and folding the workspace offset and resolution in keeps this a few ms.
    ray_u, ray_v, ray_z = _cell_rays(k.tobytes(), pose.tobytes(), depth.shape, workspace)
    depth_flat = depth.reshape(-1)
    pixels = np.flatnonzero(np.isfinite(depth_flat) & (depth_flat > 0))
    z_cam = depth_flat[pixels].astype(np.float64)
    u = np.floor(ray_u[0][pixels] * z_cam + ray_u[1]).astype(np.int64)
    v = np.floor(ray_v[0][pixels] * z_cam + ray_v[1]).astype(np.int64)
    z = ray_z[0][pixels] * z_cam + ray_z[1]
    inside = np.flatnonzero((u >= 0) & (u < width) & (v >= 0) & (v < height) & (z < workspace.z_max))
    cells = v[inside] * width + u[inside]
    z = z[inside]

    top = np.full(height * width, -np.inf)
    np.maximum.at(top, cells, z)
    winners = np.flatnonzero(z == top[cells])
    color_hm = np.zeros((height * width, 3), dtype=np.uint8)
    color_hm[cells[winners]] = np.take(color.reshape(-1, 3), pixels[inside[winners]], axis=0)

    reached = np.isfinite(top)
    depth_hm = np.zeros(height * width, dtype=np.float32)
    depth_hm[reached] = np.maximum(top[reached] - workspace.z_min, 0.0)
    return color_hm.reshape(height, width, 3), depth_hm.reshape(height, width), reached.reshape(height, width)

