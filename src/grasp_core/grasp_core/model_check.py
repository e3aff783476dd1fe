"""Is a Q network fit to serve? Checked before the learner saves or announces a model, and before the affordance
node swaps one in (issue 11): one model with NaN or inf in it makes every proposal fail until a good one comes.

Two checks, cheapest first:
- `check_finite_model(fcn)`: every floating-point parameter and buffer (BatchNorm running statistics included)
  is finite;
- `check_finite_q(qnet, color, depth)`: the Q maps of every rotation (or of VET_ROTATIONS) on a probe heightmap
  are finite. Finite weights can still give inf (an overflow) or NaN (e.g. a negative BatchNorm running variance)
  at inference.

Both raise `ModelCheckError` (a ValueError) that says what is wrong and where.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from grasp_core.networks import heightmaps_to_tensors
from grasp_core.rotation import InferenceOptions, RotatingQNetwork


# Rotations whose Q a new model version must give finite before the learner announces it and before the affordance
# node swaps it in. One: a version comes after every learner update, and checking all 16 in both nodes took ~0.9 s
# of a core per version on 2 loaded cores, so the learner fell behind; what breaks a network (NaN/inf weights,
# BatchNorm statistics) shows in every rotation, and every proposal's Q maps are still checked in full before a
# grasp is chosen from them.
VET_ROTATIONS = (0,)


class ModelCheckError(ValueError):
    """The network holds non-finite numbers, or gives non-finite Q maps."""


def non_finite_tensors(module: torch.nn.Module) -> list[str]:
    """Names of the floating-point parameters and buffers that hold NaN or inf."""
    return [name for name, tensor in module.state_dict().items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def check_finite_model(module: torch.nn.Module, what: str = "the model") -> None:
    bad = non_finite_tensors(module)
    if bad:
        raise ModelCheckError(f"{what} has NaN or inf in {len(bad)} tensor(s): {', '.join(bad[:5])}"
                              + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""))


def probe_heightmap(side: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic scene (table plus a few boxes) for when no real heightmap is at hand."""
    if side < 8:
        raise ValueError(f"probe heightmap side must be >= 8 pixels, got {side}")
    rng = np.random.default_rng(seed)
    color = np.full((side, side, 3), 60, np.uint8)
    depth = np.zeros((side, side), np.float32)
    for _ in range(3):
        h, w = rng.integers(side // 8, side // 4 + 1, size=2)
        v, u = rng.integers(0, side - h), rng.integers(0, side - w)
        color[v:v + h, u:u + w] = rng.integers(0, 256, size=3, dtype=np.uint8)
        depth[v:v + h, u:u + w] = rng.uniform(0.02, 0.08)
    return color, depth


def check_finite_q(qnet: RotatingQNetwork, color: np.ndarray, depth: np.ndarray,
                   options: InferenceOptions = InferenceOptions(), what: str = "the model",
                   rotations: Sequence[int] | None = None) -> np.ndarray:
    """Q maps (R, H, W) of the probe heightmap (all rotations, or the given ones); ModelCheckError if any value
    is NaN or inf. One rotation costs 1/R of a full check and catches what breaks the whole network (BatchNorm);
    for a few rotations of a network that pools its head over the angles, their own (unpooled) scores."""
    colour_t, depth_t = heightmaps_to_tensors(color, depth)
    device = next(qnet.parameters()).device
    with torch.inference_mode():
        q = qnet.q_maps(colour_t.to(device), depth_t.to(device), options, rotations,
                        pool_angles=rotations is None).cpu().numpy()
    finite = np.isfinite(q)
    if not finite.all():
        bad_rotations = sorted({int(i) for i in np.nonzero(~finite)[0]})
        raise ModelCheckError(f"{what} gives NaN or inf Q values on a {depth.shape[1]}x{depth.shape[0]} probe "
                              f"heightmap ({int((~finite).sum())} of {q.size} values, rotations {bad_rotations[:8]})")
    return q


def check_model(qnet: RotatingQNetwork, color: np.ndarray | None = None, depth: np.ndarray | None = None,
                options: InferenceOptions = InferenceOptions(), what: str = "the model",
                probe_side: int = 64, rotations: Sequence[int] | None = None) -> None:
    """Both checks; the probe is the given heightmap, else `probe_heightmap(probe_side)`; Q of `rotations` (all
    if None: see check_finite_q for what one rotation catches)."""
    check_finite_model(qnet, what)
    if color is None or depth is None:
        color, depth = probe_heightmap(max(8, int(probe_side)))
    check_finite_q(qnet, color, depth, options, what, rotations)


def probe_side_for(resolution: float | None, workspace_m: float = 0.448, default: int = 64) -> int:
    """Side in pixels of a probe heightmap for a profile's resolution (VPG's 0.448 m workspace)."""
    if resolution is None or not (math.isfinite(resolution) and resolution > 0):
        return default
    return max(8, min(512, int(round(workspace_m / resolution))))
