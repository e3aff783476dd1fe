"""What the affordance node shows in RViz: the Q map over the colour heightmap, the chosen jaw, a coloured cloud.

Colours come from OpenCV's JET colour map of the Q map scaled to [0, 1] over its own min..max (Q values of an
untrained or warm-started network are not probabilities yet, so a fixed scale would often show one colour).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from geometry_msgs.msg import Point
from sensor_msgs.msg import PointCloud2, PointField
from visualization_msgs.msg import Marker, MarkerArray

from grasp_core.workspace import WorkspaceLimits


def normalized(q_map: np.ndarray) -> np.ndarray:
    """(H, W) -> float32 in [0, 1] by min..max (all zeros for a constant map)."""
    q_map = np.asarray(q_map, dtype=np.float32)
    low, high = float(q_map.min()), float(q_map.max())
    if high - low < 1e-12:
        return np.zeros_like(q_map)
    return (q_map - low) / (high - low)


def affordance_colors(q_map: np.ndarray) -> np.ndarray:
    """(H, W) Q -> (H, W, 3) uint8 RGB, JET (blue = low, red = high)."""
    gray = np.round(normalized(q_map) * 255.0).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def affordance_image(color_hm: np.ndarray, q_map: np.ndarray, grasp_uv: tuple[int, int] | None = None,
                     angle: float = 0.0, jaw_width_px: float = 10.0) -> np.ndarray:
    """VPG's prediction view: JET(Q) blended 50/50 over the colour heightmap, the grasp drawn as a jaw line."""
    if color_hm.shape[:2] != q_map.shape:
        raise ValueError(f"colour heightmap {color_hm.shape[:2]} and Q map {q_map.shape} differ in size")
    image = cv2.addWeighted(np.ascontiguousarray(color_hm, dtype=np.uint8), 0.5, affordance_colors(q_map), 0.5, 0)
    if grasp_uv is not None:
        u, v = grasp_uv
        du, dv = 0.5 * jaw_width_px * math.cos(angle), 0.5 * jaw_width_px * math.sin(angle)
        p1 = (int(round(u - du)), int(round(v - dv)))
        p2 = (int(round(u + du)), int(round(v + dv)))
        cv2.line(image, p1, p2, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.circle(image, (int(u), int(v)), max(2, int(jaw_width_px / 8)), (255, 255, 255), 1, cv2.LINE_AA)
    return image


def heightmap_points(depth_hm: np.ndarray, workspace: WorkspaceLimits) -> np.ndarray:
    """(H, W) depth -> (H * W, 3) float32 points (x, y, z) in the workspace frame, row-major."""
    h, w = depth_hm.shape
    v, u = np.mgrid[0:h, 0:w]
    x = workspace.x_min + u * workspace.resolution
    y = workspace.y_min + v * workspace.resolution
    z = workspace.z_min + depth_hm
    return np.stack((x, y, z), axis=-1).reshape(-1, 3).astype(np.float32)


def point_cloud(points: np.ndarray, colors: np.ndarray, header) -> PointCloud2:
    """(N, 3) float32 xyz + (N, 3) uint8 RGB -> PointCloud2 with fields x, y, z, rgb (packed float, as PCL)."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    if len(points) != len(colors):
        raise ValueError(f"{len(points)} points but {len(colors)} colours")
    cloud = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    cloud["x"], cloud["y"], cloud["z"] = points[:, 0], points[:, 1], points[:, 2]
    c = colors.astype(np.uint32)
    cloud["rgb"] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = 1, len(points)
    msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, n in enumerate(("x", "y", "z", "rgb"))]
    msg.is_bigendian = False
    msg.point_step = 16
    msg.row_step = 16 * len(points)
    msg.is_dense = True
    msg.data = cloud.tobytes()
    return msg


def grasp_markers(header, position, angle: float, jaw_width: float, q_value: float, label: str = "",
                  finger_size=(0.01, 0.02, 0.04), approach: float = 0.10) -> MarkerArray:
    """The jaw at the grasp: two finger boxes `jaw_width` apart along (cos a, sin a), an approach arrow from
    above down to the jaw centre, and a text with the Q value. Fixed ids, so each call replaces the last."""
    x, y, z = (float(p) for p in position)
    c, s = math.cos(angle), math.sin(angle)
    yaw_q = (0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2))
    markers = []

    def marker(marker_id: int, kind: int, rgba) -> Marker:
        m = Marker()
        m.header = header
        m.ns = "grasp"
        m.id = marker_id
        m.type = kind
        m.action = Marker.ADD
        m.pose.orientation.w = 1.0
        m.color.r, m.color.g, m.color.b, m.color.a = rgba
        return m

    for marker_id, side in ((0, -1.0), (1, 1.0)):
        finger = marker(marker_id, Marker.CUBE, (0.1, 0.8, 0.1, 0.9))
        offset = side * (jaw_width / 2 + finger_size[0] / 2)
        finger.pose.position.x, finger.pose.position.y = x + offset * c, y + offset * s
        finger.pose.position.z = z + finger_size[2] / 2 - 0.005
        (finger.pose.orientation.x, finger.pose.orientation.y,
         finger.pose.orientation.z, finger.pose.orientation.w) = yaw_q
        finger.scale.x, finger.scale.y, finger.scale.z = finger_size
        markers.append(finger)
    arrow = marker(2, Marker.ARROW, (1.0, 0.6, 0.0, 0.9))
    arrow.points = [Point(x=x, y=y, z=z + approach), Point(x=x, y=y, z=z)]
    arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.006, 0.012, 0.02  # shaft, head diameter, head length
    markers.append(arrow)
    text = marker(3, Marker.TEXT_VIEW_FACING, (1.0, 1.0, 1.0, 1.0))
    text.pose.position.x, text.pose.position.y, text.pose.position.z = x, y, z + approach + 0.02
    text.scale.z = 0.02
    text.text = f"Q={q_value:.2f}" + (f" {label}" if label else "")
    markers.append(text)
    return MarkerArray(markers=markers)


def affordance_grid(q_maps: np.ndarray, chosen: int | None = None, columns: int | None = None) -> np.ndarray:
    """(R, H, W) Q maps -> one RGB image of every rotation's map in a grid (rotation 0 top left, row by row),
    JET over the min..max of all R maps together (so rotations compare), a 1-pixel gap, the `chosen` rotation
    framed in white."""
    q_maps = np.asarray(q_maps, dtype=np.float32)
    if q_maps.ndim != 3 or q_maps.shape[0] < 1:
        raise ValueError(f"Q maps must be (R, H, W), got {q_maps.shape}")
    r, h, w = q_maps.shape
    columns = columns or int(math.ceil(math.sqrt(r)))
    rows = int(math.ceil(r / columns))
    colours = affordance_colors(q_maps.reshape(r * h, w)).reshape(r, h, w, 3)
    grid = np.zeros((rows * (h + 1) + 1, columns * (w + 1) + 1, 3), np.uint8)
    for i in range(r):
        top, left = 1 + (i // columns) * (h + 1), 1 + (i % columns) * (w + 1)
        grid[top:top + h, left:left + w] = colours[i]
        if i == chosen:
            cv2.rectangle(grid, (left - 1, top - 1), (left + w, top + h), (255, 255, 255), 1)
    return grid
