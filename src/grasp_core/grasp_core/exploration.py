"""How the next grasp is chosen from Q maps: epsilon schedules, exploration modes, and failed-grasp exclusion.

Epsilon schedules (over attempts t): `exponential` eps(t) = max(end, start * (end / start) ** (t / decay_steps))
(the seed decays 0.5 -> 0.001 "in run time" without a formula), `vpg` max(0.5 * 0.9998 ** t, 0.1), `linear`
and `constant`.

Exploration modes (what an exploring grasp is):
- `uniform` (the seed, VPG): a random rotation at a uniformly random pixel. In a 10-object scene such grasps
  succeed ~7 % of the time, so every exploring attempt is close to a lost one.
- `affordance`: a pixel drawn from the current map, p(pixel) ~ exp(s / T) with s = max over rotations of Q
  scaled to [0, 1] on this heightmap, and a uniformly random rotation there. A warm-started map already knows
  where objects are but not at which angle to close, so this explores angles where grasps can succeed.
- `boltzmann`: no epsilon coin; (rotation, pixel) drawn from exp(q / (T * epsilon / epsilon_start)) with q the
  Q maps scaled to [0, 1], so the schedule anneals the temperature.

Failed-grasp exclusion (`FailedGraspMemory`): a failed grasp on a scene that did not change would fail again,
yet the greedy policy of a network that has not yet learned from it proposes it again (VPG's "stuck" loop).
Until the scene changes, grasps within `exclude_radius_m` of a failed one at the same jaw orientation (rotation i
or i + R/2, the same physical grasp) are not proposed. An object the jaw cannot hold (too wide, too heavy where it
is grasped) moves a little at every try, so the scene "changes" and the memory forgets it: after `give_up_after`
failures in a row within twice the radius of each other, every jaw orientation there is excluded until a grasp
succeeds or the scene is reset.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

EPSILON_SCHEDULES = ("exponential", "vpg", "linear", "constant")
EXPLORATION_MODES = ("uniform", "affordance", "boltzmann")


@dataclass(frozen=True)
class ExplorationConfig:
    epsilon_schedule: str = "exponential"
    epsilon_start: float = 0.5
    epsilon_end: float = 0.001
    epsilon_decay_steps: int = 1000  # exponential / linear: attempts to reach epsilon_end (the seed: 1000)
    vpg_epsilon_decay: float = 0.9998  # vpg: max(start * decay ** t, floor)
    vpg_epsilon_floor: float = 0.1
    mode: str = "uniform"  # the seed; see the module docstring
    temperature: float = 0.1  # affordance / boltzmann: softmax temperature on Q scaled to [0, 1]
    exclude_failed: bool = False  # FailedGraspMemory in the loop
    exclude_radius_m: float = 0.012  # exclusion radius around a failed grasp, metres
    give_up_after: int = 0  # failures in a row at one spot before all its jaw orientations are excluded (0: never)

    def __post_init__(self) -> None:
        if self.epsilon_schedule not in EPSILON_SCHEDULES:
            raise ValueError(f"unknown epsilon schedule {self.epsilon_schedule!r}; choose one of "
                             f"{EPSILON_SCHEDULES}")
        for name in ("epsilon_start", "epsilon_end", "vpg_epsilon_decay", "vpg_epsilon_floor"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.epsilon_end > self.epsilon_start:
            raise ValueError(f"need epsilon_end <= epsilon_start, got {self.epsilon_end} > {self.epsilon_start}")
        if self.epsilon_schedule == "exponential" and self.epsilon_end == 0.0:
            raise ValueError("the exponential schedule needs epsilon_end > 0")
        if not isinstance(self.epsilon_decay_steps, int) or self.epsilon_decay_steps < 1:
            raise ValueError(f"epsilon_decay_steps must be an integer >= 1, got {self.epsilon_decay_steps!r}")
        if self.mode not in EXPLORATION_MODES:
            raise ValueError(f"unknown exploration mode {self.mode!r}; choose one of {EXPLORATION_MODES}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not (math.isfinite(self.exclude_radius_m) and self.exclude_radius_m >= 0):
            raise ValueError(f"exclude_radius_m must be >= 0, got {self.exclude_radius_m!r}")
        if isinstance(self.give_up_after, bool) or not isinstance(self.give_up_after, int) or self.give_up_after < 0:
            raise ValueError(f"give_up_after must be an integer >= 0 (0: never), got {self.give_up_after!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def check_epsilon(epsilon: float) -> float:
    """`epsilon` if it is a probability (finite, in [0, 1]), else ValueError: the one check of an epsilon a caller
    hands in (select_action, the affordance node's requests)."""
    if not (math.isfinite(epsilon) and 0.0 <= epsilon <= 1.0):
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    return epsilon


def epsilon_at(config: ExplorationConfig, step: int) -> float:
    """Exploration probability after `step` attempts."""
    start, end = config.epsilon_start, config.epsilon_end
    if config.epsilon_schedule == "constant":
        return start
    if config.epsilon_schedule == "vpg":
        return max(start * config.vpg_epsilon_decay ** step, config.vpg_epsilon_floor)
    fraction = min(step / config.epsilon_decay_steps, 1.0)
    if config.epsilon_schedule == "linear":
        return start + (end - start) * fraction
    return max(end, start * (end / start) ** fraction)


@dataclass(frozen=True)
class Action:
    rotation: int
    u: int  # column
    v: int  # row
    q: float  # Q[rotation, v, u]
    explored: bool  # not the argmax (epsilon or Boltzmann draw)


def _as_numpy(q_maps) -> np.ndarray:
    q = np.asarray(q_maps.detach().cpu() if isinstance(q_maps, torch.Tensor) else q_maps, dtype=np.float64)
    if q.ndim != 3:
        raise ValueError(f"Q maps must be (R, H, W), got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("Q maps contain NaN or inf")
    return q


def _allowed_actions(shape: tuple[int, int, int], valid_mask, excluded) -> np.ndarray:
    """(R, H, W) bool: pixels in `valid_mask` ((H, W) or (R, H, W)) and not in `excluded` (R, H, W)."""
    allowed = np.ones(shape, bool)
    if valid_mask is not None:
        valid_mask = np.asarray(valid_mask, bool)
        if valid_mask.shape not in (shape[1:], shape):
            raise ValueError(f"valid mask must be (H, W) = {shape[1:]} or (R, H, W) = {shape}, "
                             f"got {valid_mask.shape}")
        allowed &= valid_mask
    if excluded is not None:
        excluded = np.asarray(excluded, bool)
        if excluded.shape != shape:
            raise ValueError(f"excluded actions must be (R, H, W) = {shape}, got {excluded.shape}")
        allowed &= ~excluded
    if not allowed.any():
        raise ValueError("no action is left to choose: the valid mask and the excluded actions cover everything")
    return allowed


def _scaled(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _draw(weights_log: np.ndarray, rng: np.random.Generator) -> int:
    flat = weights_log.ravel()
    p = np.exp(flat - flat.max())
    p /= p.sum()
    return int(rng.choice(flat.size, p=p))


def select_action(q_maps, epsilon: float, rng: np.random.Generator, valid_mask: np.ndarray | None = None,
                  mode: str = "uniform", temperature: float = 0.1, excluded: np.ndarray | None = None,
                  epsilon_start: float = 0.5) -> Action:
    """Choose a grasp from Q maps (R, H, W) by `mode` (module docstring).

    `valid_mask` ((H, W) or (R, H, W) bool) limits both the argmax and exploration; `excluded` (R, H, W) bool
    removes actions (e.g. `FailedGraspMemory.excluded`).
    """
    q = _as_numpy(q_maps)
    check_epsilon(epsilon)
    if mode not in EXPLORATION_MODES:
        raise ValueError(f"unknown exploration mode {mode!r}; choose one of {EXPLORATION_MODES}")
    rotations, height, width = q.shape
    allowed = _allowed_actions(q.shape, valid_mask, excluded)
    masked = np.where(allowed, q, -np.inf)
    greedy = np.unravel_index(int(np.argmax(masked)), q.shape)

    def action(r, v, u, explored):
        return Action(int(r), int(u), int(v), float(q[r, v, u]), explored)

    if mode == "boltzmann":
        if epsilon <= 0.0:
            return action(*greedy, False)
        t = temperature * epsilon / max(epsilon_start, 1e-12)
        logits = np.where(allowed, _scaled(np.where(allowed, q, q[allowed].min())) / t, -np.inf)
        r, v, u = np.unravel_index(_draw(logits, rng), q.shape)
        return action(r, v, u, (r, v, u) != tuple(greedy))
    if rng.random() >= epsilon:
        return action(*greedy, False)
    pixel_allowed = allowed.any(axis=0)
    if mode == "uniform":
        pixels = np.flatnonzero(pixel_allowed)
        v, u = divmod(int(pixels[rng.integers(len(pixels))]), width)
    else:  # affordance: a pixel from the map, a random rotation there
        best = np.where(allowed, q, -np.inf).max(axis=0)
        score = _scaled(np.where(pixel_allowed, best, best[pixel_allowed].min()))
        v, u = divmod(_draw(np.where(pixel_allowed, score / temperature, -np.inf), rng), width)
    choices = np.flatnonzero(allowed[:, v, u])
    r = int(choices[rng.integers(len(choices))])
    return action(r, v, u, True)


class FailedGraspMemory:
    """Failed grasps on the current, unchanged scene (module docstring); cleared when the scene changes."""

    def __init__(self, num_rotations: int, radius_px: float, give_up_after: int = 0):
        if num_rotations < 1 or not radius_px >= 0 or give_up_after < 0:
            raise ValueError(f"need num_rotations >= 1, radius_px >= 0 and give_up_after >= 0, got {num_rotations}, "
                             f"{radius_px}, {give_up_after}")
        self.num_rotations = int(num_rotations)
        self.radius_px = float(radius_px)
        self.give_up_after = int(give_up_after)
        self.recent: list[tuple[int, int, int]] = []  # (rotation, u, v) failed on the unchanged scene
        self.given_up: list[tuple[int, int]] = []  # (u, v) where give_up_after failures in a row happened
        self._streak: list[tuple[int, int]] = []

    def record(self, rotation: int, u: int, v: int, success: bool, scene_changed: bool) -> None:
        """After an attempt: a change (or a success, which always changes the scene) forgets the recent failures;
        a success also forgets the spots given up on."""
        if success:
            self.clear()
            return
        if self._streak and math.dist((u, v), self._streak[-1]) > 2 * self.radius_px:
            self._streak.clear()
        self._streak.append((int(u), int(v)))
        if self.give_up_after and len(self._streak) >= self.give_up_after:
            self.given_up.append((int(u), int(v)))
            self._streak.clear()
        if scene_changed:
            self.recent.clear()
        else:
            self.recent.append((int(rotation) % self.num_rotations, int(u), int(v)))

    def clear(self) -> None:
        self.recent.clear()
        self.given_up.clear()
        self._streak.clear()

    @property
    def failed(self) -> list[tuple[int, int, int]]:
        """(rotation, u, v) of every excluded grasp: the recent failures, and every orientation of a spot given up
        on (what a ProposeGrasp request's exclude lists carry)."""
        spots = [(r, u, v) for u, v in self.given_up for r in range(self.num_rotations)]
        return self.recent + spots

    def excluded(self, height: int, width: int) -> np.ndarray | None:
        """(R, H, W) bool of the actions not to propose, or None when nothing failed."""
        failed = self.failed
        if not failed:
            return None
        mask = np.zeros((self.num_rotations, height, width), bool)
        vv, uu = np.mgrid[0:height, 0:width]
        half = self.num_rotations // 2 if self.num_rotations % 2 == 0 else None
        for rotation, u, v in failed:
            disk = (uu - u) ** 2 + (vv - v) ** 2 <= self.radius_px ** 2
            mask[rotation] |= disk
            if half is not None:
                mask[(rotation + half) % self.num_rotations] |= disk
        return mask
