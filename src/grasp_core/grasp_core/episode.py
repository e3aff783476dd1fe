"""The attempt/episode rule every learning loop shares (the node graph's executor and the experiment harness).

After each grasp attempt (reward 1 if an object was held, else 0) the rule decides:
- terminal + reset when the workspace is empty (the backend's object count, or VPG's heightmap test: less than
  `empty_min_area` stands higher than `empty_height`), or after `reset_after_failures` failed grasps in a row;
- terminal without reset when no next state could be observed;
- otherwise the attempt continues into the next state.
`scene_changed` is VPG's change test (enough cells moved by more than `change_height`, in patches at least 3 cells
wide); the loop uses it to forget excluded failed grasps (grasp_core.exploration.FailedGraspMemory).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import binary_opening


@dataclass(frozen=True)
class EpisodeConfig:
    reset_after_failures: int = 10  # failed grasps in a row before the scene is reset (0: never)
    empty_height: float = 0.02  # m: a cell higher than this holds an object (VPG)
    empty_min_area: float = 0.00004  # m^2: less occupied area is an empty workspace (VPG sim: 10 cells of 2 mm;
    # VPG real: 0.0012, 300 cells, against depth noise)
    change_height: float = 0.01  # m: a cell whose height moved more than this changed
    change_min_area: float = 0.0003  # m^2: the scene changed when at least this area changed

    def __post_init__(self) -> None:
        if not isinstance(self.reset_after_failures, int) or self.reset_after_failures < 0:
            raise ValueError(f"reset_after_failures must be an integer >= 0, got {self.reset_after_failures!r}")
        for name in ("empty_height", "empty_min_area", "change_height", "change_min_area"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def _depth(depth_hm) -> np.ndarray:
    depth = np.nan_to_num(np.asarray(depth_hm, dtype=np.float64))
    if depth.ndim != 2:
        raise ValueError(f"depth heightmap must be 2-D, got shape {depth.shape}")
    return depth


def is_empty(depth_hm: np.ndarray, resolution: float, config: EpisodeConfig) -> bool:
    """VPG's reset test, by area so that it holds at any resolution."""
    occupied = int(np.count_nonzero(_depth(depth_hm) > config.empty_height))
    return occupied * resolution ** 2 < config.empty_min_area


def scene_changed(depth_before: np.ndarray, depth_after: np.ndarray, resolution: float,
                  config: EpisodeConfig) -> bool:
    """VPG's change test: enough area moved by more than `change_height`, counting only patches at least 3 cells
    wide (a 3x3 opening of the moved cells). Depth noise moves a depth point across a cell border at object edges,
    so two frames of a still scene differ in 1-2 cell wide slivers along every edge (a few hundred cells in a
    10-object scene with the simulated D435); an object that moved or left changes whole patches."""
    before, after = _depth(depth_before), _depth(depth_after)
    if before.shape != after.shape:
        return True
    moved = binary_opening(np.abs(after - before) > config.change_height, structure=np.ones((3, 3), bool))
    return int(np.count_nonzero(moved)) * resolution ** 2 >= config.change_min_area


@dataclass(frozen=True)
class EpisodeDecision:
    terminal: bool  # no future term in the target
    reset: bool  # the scene must be reset before the next attempt
    why: str  # '' when the episode goes on


class EpisodeTracker:
    """Counts failures in a row and applies the rule after each attempt."""

    def __init__(self, config: EpisodeConfig = EpisodeConfig()):
        self.config = config
        self.consecutive_failures = 0

    def after_attempt(self, success: bool, objects_remaining: int | None, next_depth: np.ndarray | None,
                      resolution: float) -> EpisodeDecision:
        """`objects_remaining`: the backend's count (None if it cannot tell); `next_depth`: the state after the
        grasp (None if none came)."""
        self.consecutive_failures = 0 if success else self.consecutive_failures + 1
        limit = self.config.reset_after_failures
        if objects_remaining == 0:
            decision = EpisodeDecision(True, True, "the workspace is empty")
        elif limit and self.consecutive_failures >= limit:
            decision = EpisodeDecision(True, True, f"{self.consecutive_failures} failed grasps in a row")
        elif next_depth is None:
            decision = EpisodeDecision(True, False, "no heightmap after the grasp")
        elif is_empty(next_depth, resolution, self.config):
            decision = EpisodeDecision(True, True, "the workspace is empty")
        else:
            decision = EpisodeDecision(False, False, "")
        if decision.reset:
            self.consecutive_failures = 0
        return decision

    def scene_was_reset(self) -> None:
        self.consecutive_failures = 0
