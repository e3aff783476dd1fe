"""Which grasps a Q map may choose from, and the Q values it chooses them by.

Two facts about a top-down parallel-jaw grasp that the network does not have to learn:
- **Jaw symmetry.** Rotation `i` and `i + R/2` close the same jaws along the same line: one physical grasp. The
  network predicts it twice, from two rotated copies of the heightmap, so the mean of the two is a better estimate
  than either (a free test-time augmentation; `symmetric_q`).
- **Footprint.** The depth heightmap says where objects stand. A grasp centred on the bare table cannot succeed,
  and one centred on an object's rim usually slips off it. `grasp_mask` keeps the pixels at least `edge_margin_m`
  inside a footprint (or, where no pixel is that deep, the deepest ones), so both the argmax and exploration stay
  where a grasp can work.

docs/learning.md (1.4) measures both on the pretrained Q_s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from grasp_core.exploration import Action, select_action

ON_OBJECT_HEIGHT_M = 0.01  # a grasp "on an object" in the logs and diagnoses: the depth there stands higher than this


@dataclass
class ActionSpaceConfig:
    object_mask: bool = False  # choose only pixels on an object's footprint (the seed: anywhere)
    min_height_m: float = ON_OBJECT_HEIGHT_M  # a pixel is on an object where the depth stands higher than this
    edge_margin_m: float = 0.0  # ... and at least this far inside the footprint's border
    symmetric_q: bool = False  # choose by the mean Q of rotations i and i + R/2 (the same physical grasp)

    def __post_init__(self) -> None:
        for name in ("min_height_m", "edge_margin_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"action space {name} must be a finite number >= 0 (metres), got {value!r}")

    def describe(self) -> str:
        """For logs: e.g. "pixels 16 mm inside object footprints (> 10 mm high), jaw-symmetric Q"."""
        where = (f"pixels {1e3 * self.edge_margin_m:.0f} mm inside object footprints "
                 f"(> {1e3 * self.min_height_m:.0f} mm high)" if self.object_mask else "anywhere")
        return where + (", jaw-symmetric Q" if self.symmetric_q else ", each rotation's own Q")


def symmetric_q(q_maps: np.ndarray) -> np.ndarray:
    """(R, H, W) Q maps with rotation i and i + R/2 both set to their mean (R must be even)."""
    q = np.asarray(q_maps)
    if q.ndim != 3 or q.shape[0] % 2:
        raise ValueError(f"symmetric_q needs (R, H, W) Q maps with an even R, got shape {q.shape}")
    return 0.5 * (q + np.roll(q, q.shape[0] // 2, axis=0))


def grasp_mask(depth_hm: np.ndarray, config: ActionSpaceConfig, resolution: float,
               excluded: np.ndarray | None = None) -> np.ndarray | None:
    """(H, W) bool: where a grasp may be centred, or None for anywhere.

    A pixel is allowed when the depth heightmap stands above `min_height_m` there and the distance to the
    nearest pixel that does not (or to the heightmap's border) is at least `edge_margin_m`, lowered to the
    deepest pixel's distance when no pixel is that far inside. When the (R, H, W) `excluded` grasps (failed ones
    on this scene) cover every rotation of every such pixel, the whole footprint is allowed; when they cover that
    too, or no object is in view, or the mask is off: None.
    """
    if not config.object_mask:
        return None
    depth = np.asarray(depth_hm)
    if depth.ndim != 2:
        raise ValueError(f"grasp_mask needs an (H, W) depth heightmap, got shape {depth.shape}")
    if not (math.isfinite(resolution) and resolution > 0):
        raise ValueError(f"resolution must be > 0 metres per pixel, got {resolution}")
    on_object = np.nan_to_num(depth, nan=0.0) > config.min_height_m
    if not on_object.any():
        return None
    # distance in pixels to the nearest pixel off the footprint; the border counts as off (padding)
    inside = distance_transform_edt(np.pad(on_object, 1))[1:-1, 1:-1]
    # Distances are often whole pixels: 1e-6 px of slack keeps a margin that arrived as float32 (a ProposeGrasp
    # field: 0.016 -> 0.016000001 m, 4.0000002 px at 4 mm) choosing the same pixels as the preset's float64 margin.
    deep = inside >= min(max(config.edge_margin_m / resolution, 1.0), float(inside.max())) - 1e-6
    free = None if excluded is None else ~np.asarray(excluded, bool).all(axis=0)
    for mask in (deep, on_object):
        if free is None or (mask & free).any():
            return mask
    return None


def choose_grasp(q_maps: np.ndarray, depth_hm: np.ndarray, resolution: float, actions: ActionSpaceConfig,
                 epsilon: float, rng: np.random.Generator, mode: str = "uniform", temperature: float = 0.1,
                 excluded: np.ndarray | None = None, epsilon_start: float = 0.5,
                 explore_roi: np.ndarray | None = None) -> Action:
    """The one way every loop picks a grasp: `select_action` on the (jaw-symmetric) Q maps, within
    `grasp_mask`, never an `excluded` (R, H, W) grasp. `explore_roi` ((H, W) bool, the MoG baseline) further
    limits exploring grasps, where it leaves anything; the returned `Action.q` is the Q it was chosen by."""
    q = symmetric_q(q_maps) if actions.symmetric_q else np.asarray(q_maps)
    allowed = grasp_mask(depth_hm, actions, resolution, excluded)
    explore_allowed = allowed
    if explore_roi is not None:
        roi = np.asarray(explore_roi, bool) if allowed is None else np.asarray(explore_roi, bool) & allowed
        if roi.any():
            explore_allowed = roi
    action = select_action(q, epsilon, rng, explore_allowed, mode, temperature, excluded, epsilon_start)
    if not action.explored and explore_allowed is not allowed:  # a greedy grasp may leave the ROI
        action = select_action(q, 0.0, rng, allowed, mode, temperature, excluded)
    return action
