"""Pictures of an annotation: the coarse affordance label as a colour overlay, key-point markers, a depth view.

Shared by the web tool (PNG overlays the page stacks on the colour heightmap) and the contact sheet, so both
show the same label: `grasp_core.labels.affordance_label`, the map pretraining learns.
"""
from __future__ import annotations

import cv2
import numpy as np

from grasp_core.labels import affordance_label

# Marker colours (RGB).
POINT_COLOR = (255, 255, 255)
RING_COLOR = (255, 230, 0)
PROBLEM_COLOR = (255, 40, 40)


def label_rgba(shape: tuple[int, int], points, sigmas, opacity: float = 0.7) -> np.ndarray:
    """RGBA uint8 (H, W, 4): the label map in the 'jet' colours, transparent where the label is 0."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"overlay opacity must be in [0, 1], got {opacity}")
    label = affordance_label(shape, points, sigmas)
    colours = cv2.cvtColor(cv2.applyColorMap(np.round(label * 255).astype(np.uint8), cv2.COLORMAP_JET),
                           cv2.COLOR_BGR2RGB)
    alpha = np.round(label * opacity * 255).astype(np.uint8)
    return np.dstack([colours, alpha])


def blend(color: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """Alpha-composite an RGBA overlay onto an RGB uint8 image."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = color.astype(np.float32) * (1 - alpha) + rgba[..., :3].astype(np.float32) * alpha
    return np.round(out).astype(np.uint8)


def depth_rgb(depth: np.ndarray, max_height: float | None = None) -> np.ndarray:
    """A depth heightmap as RGB uint8 ('turbo' colours, black = empty table), scaled to its highest cell."""
    depth = np.asarray(depth, dtype=np.float32)
    top = float(max_height) if max_height is not None else float(depth.max())
    scaled = np.zeros(depth.shape, np.uint8) if top <= 0 else np.round(np.clip(depth / top, 0, 1) * 255)
    rgb = cv2.cvtColor(cv2.applyColorMap(scaled.astype(np.uint8), cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    rgb[depth <= 0] = 0
    return rgb


def draw_points(image: np.ndarray, points, sigmas, scale: float = 1.0, bad: set[int] = frozenset()) -> np.ndarray:
    """Key points as crosses with a ring at radius sigma, on a copy of `image` enlarged by `scale`.

    Pixel (u, v) is drawn at the centre of its cell. Points whose index is in `bad` are drawn in red.
    """
    h, w = image.shape[:2]
    out = cv2.resize(image, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_NEAREST)
    out = np.ascontiguousarray(out)
    for n, ((u, v), sigma) in enumerate(zip(np.asarray(points).reshape(-1, 2), np.asarray(sigmas).reshape(-1))):
        centre = (int(round((u + 0.5) * scale)), int(round((v + 0.5) * scale)))
        ring = PROBLEM_COLOR if n in bad else RING_COLOR
        cv2.circle(out, centre, max(1, int(round(sigma * scale))), ring, 1, cv2.LINE_AA)
        arm = max(3, int(round(2 * scale)))
        for colour, thickness in (((0, 0, 0), 3), (PROBLEM_COLOR if n in bad else POINT_COLOR, 1)):
            cv2.line(out, (centre[0] - arm, centre[1]), (centre[0] + arm, centre[1]), colour, thickness)
            cv2.line(out, (centre[0], centre[1] - arm), (centre[0], centre[1] + arm), colour, thickness)
    return out


def encode_png(image: np.ndarray) -> bytes:
    """RGB or RGBA uint8 -> PNG bytes."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"need an RGB or RGBA uint8 image, got {image.dtype} {image.shape}")
    code = cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, code))
    if not ok:
        raise ValueError("OpenCV could not encode the image as PNG")
    return png.tobytes()
