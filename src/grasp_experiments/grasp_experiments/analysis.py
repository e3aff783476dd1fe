"""From raw per-attempt logs to the seed's numbers: G curves with 95 % CI, G-bar, Cs(p), acceleration ratios.

How each number is made (the seed leaves some choices open; these are ours, stated in the report):
- G(t): successes among the last M attempts divided by M (`metrics.windowed_success`, partial="fixed", as VPG's
  plots: G ramps up from 0 over the first M attempts). One curve per seed; the cell's curve is the seed mean,
  its band the Student-t 95 % CI over seeds (`metrics.mean_ci95`).
- G-bar (Definition 1, Eq. 6): y(i) = the seed-mean success rate in consecutive boxes of L attempts
  (n = T / L boxes); G-bar = the mean of the last k boxes y(n-k+1..n). The cell is "settled" if
  |y(i) - y(i-1)| < delta for each of those k boxes, else it is marked "unsettled" (still learning at the end).
- Cs(p) (Definition 2): the first attempt at which the seed-mean G curve reaches p % of G-bar.
  `gbar="own"`: each method against its own G-bar (Definition 2 as written);
  `gbar="shared"`: every method of one object count against the same G-bar, the highest of the methods'
  (the seed: "fewer tries than the baseline does to achieve the same G-bar"); for the acceleration ratio m,
  the method and the baseline are both measured against the higher of their two G-bars.
- m = (r - r') / r' with r = Cs(p) of the baseline (vanilla), r' = Cs(p) of the method.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grasp_core.attempts import read_attempts
from grasp_core.metrics import acceleration_ratio, mean_ci95, steps_to_reach, windowed_success

from grasp_experiments.runner import DONE_FILE

PERCENTS = (50, 60, 70, 80, 90)


@dataclass(frozen=True)
class MetricSettings:
    window: int = 100  # M
    box: int = 100  # L
    delta: float = 0.05
    k: int = 3
    gbar: str = "own"  # or "shared"
    baseline: str = "vanilla"

    def __post_init__(self) -> None:
        if self.window < 1 or self.box < 1 or self.k < 1 or not self.delta > 0:
            raise ValueError(f"bad metric settings {self}")
        if self.gbar not in ("own", "shared"):
            raise ValueError(f"gbar must be 'own' or 'shared', got {self.gbar!r}")


def load_runs(experiment_dir: str | Path) -> dict[tuple[str, int], dict[int, np.ndarray]]:
    """{(method, objects): {seed: successes (T,) int}} for every finished run (unfinished ones are ignored)."""
    runs: dict[tuple[str, int], dict[int, np.ndarray]] = {}
    root = Path(experiment_dir) / "runs"
    if not root.is_dir():
        raise ValueError(f"{experiment_dir} holds no runs/ folder: is it an experiment made by `run`?")
    for done in sorted(root.glob(f"*/objects_*/seed_*/{DONE_FILE}")):
        spec = json.loads(done.read_text())["spec"]
        successes = np.array([a["success"] for a in read_attempts(done.parent)], dtype=np.int64)
        if len(successes) != spec["steps"]:
            raise ValueError(f"{done.parent}: {len(successes)} attempts logged, {spec['steps']} expected")
        runs.setdefault((spec["method"], spec["num_objects"]), {})[spec["seed"]] = successes
    if not runs:
        raise ValueError(f"no finished runs under {root}")
    return runs


def q_value_scale(experiment_dir: str | Path) -> dict[tuple[str, int], dict]:
    """A divergence check from the logs: |Q| of the chosen grasps per cell (rewards are 0/1, so with discount
    gamma a sound Q stays within [0, 1 / (1 - gamma)])."""
    cells: dict[tuple[str, int], dict] = {}
    for done in sorted((Path(experiment_dir) / "runs").glob(f"*/objects_*/seed_*/{DONE_FILE}")):
        spec = json.loads(done.read_text())["spec"]
        q = np.abs([a["predicted_q"] for a in read_attempts(done.parent)])
        cell = cells.setdefault((spec["method"], spec["num_objects"]), {"max": 0.0, "last20_median": []})
        cell["max"] = max(cell["max"], float(q.max()))
        cell["last20_median"].append(float(np.median(q[-20:])))
    return cells


def stable_gbar(box_means: np.ndarray, delta: float, k: int) -> tuple[float, bool]:
    """(G-bar, settled) of a box-rate sequence y(1..n), Eq. 6 with n = T / L: G-bar is the mean of the last k
    boxes, and the run has settled if |y(i) - y(i-1)| < delta for each of those k boxes.

    Eq. 6 sums y(n-k) .. y(n), i.e. the run's end. (`grasp_core.metrics.stable_success` takes the first
    stable stretch instead, which for a learning curve is often the flat zero before learning starts.)
    """
    y = np.asarray(box_means, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("no complete box of attempts: the run is shorter than the box size")
    last = y[-k:]
    steps = np.abs(np.diff(y[-(k + 1):]))
    settled = len(y) > k and bool(np.all(steps < delta))
    return float(last.mean()), settled


@dataclass
class CellSummary:
    """One (method, object count): the seeds' curves and the numbers derived from them."""

    method: str
    objects: int
    seeds: list[int]
    steps: int
    curve_mean: np.ndarray
    curve_low: np.ndarray | None
    curve_high: np.ndarray | None
    box_means: np.ndarray
    gbar: float
    settled: bool
    success_rate: float  # all attempts of all seeds
    final_g: list[float]  # G at the last attempt, per seed
    cs: dict[int, int | None] = None  # type: ignore[assignment]
    cs_reference: float | None = None  # the G-bar that Cs(p) is measured against (own or shared)

    def as_dict(self) -> dict:
        return {"method": self.method, "objects": self.objects, "seeds": self.seeds, "steps": self.steps,
                "gbar": round(self.gbar, 4), "gbar_settled": self.settled, "success_rate": round(self.success_rate, 4),
                "final_g_mean": round(float(np.mean(self.final_g)), 4),
                "final_g_per_seed": [round(g, 4) for g in self.final_g],
                "box_means": [round(float(b), 4) for b in self.box_means],
                "cs_reference_gbar": None if self.cs_reference is None else round(self.cs_reference, 4),
                "cs": {str(p): c for p, c in self.cs.items()}}


def summarise(runs: dict[tuple[str, int], dict[int, np.ndarray]], settings: MetricSettings) -> dict:
    """Every cell's summary plus the acceleration-ratio table, from the raw successes."""
    cells: dict[tuple[str, int], CellSummary] = {}
    for (method, objects), by_seed in sorted(runs.items()):
        seeds = sorted(by_seed)
        lengths = {len(by_seed[s]) for s in seeds}
        if len(lengths) != 1:
            raise ValueError(f"{method}, {objects} objects: runs of different lengths {sorted(lengths)}")
        steps = lengths.pop()
        curves = np.stack([windowed_success(by_seed[s], settings.window) for s in seeds])
        if len(seeds) >= 2:
            mean, low, high = mean_ci95(curves)
        else:
            mean, low, high = curves[0], None, None
        n_boxes = steps // settings.box
        box_means = np.stack([by_seed[s][:n_boxes * settings.box].reshape(n_boxes, settings.box).mean(1)
                              for s in seeds]).mean(0) if n_boxes else np.zeros(0)
        gbar, settled = stable_gbar(box_means, settings.delta, settings.k)
        cells[(method, objects)] = CellSummary(
            method, objects, seeds, steps, mean, low, high, box_means, gbar, settled,
            float(np.mean([by_seed[s].mean() for s in seeds])), [float(c[-1]) for c in curves])
    for (method, objects), cell in cells.items():
        reference = cell.gbar
        if settings.gbar == "shared":
            reference = max(c.gbar for (m, n), c in cells.items() if n == objects)
        cell.cs_reference = reference
        cell.cs = {p: (steps_to_reach(cell.curve_mean, p, reference) if reference > 0 else None) for p in PERCENTS}
    ratios = {}
    for (method, objects), cell in cells.items():
        base = cells.get((settings.baseline, objects))
        if method == settings.baseline or base is None:
            continue
        row = {}
        base_cs, cell_cs = base.cs, cell.cs
        if settings.gbar == "shared":  # the method and the baseline against the higher of their two G-bars
            reference = max(cell.gbar, base.gbar)
            base_cs, cell_cs = ({p: (steps_to_reach(c.curve_mean, p, reference) if reference > 0 else None)
                                 for p in PERCENTS} for c in (base, cell))
        for p in PERCENTS:
            r, r_dash = base_cs[p], cell_cs[p]
            if r is not None and r_dash is not None:
                row[p] = {"m": acceleration_ratio(r, r_dash), "bound": None}
            elif r is None and r_dash is not None:  # the baseline never got there: m is at least this
                row[p] = {"m": acceleration_ratio(base.steps, r_dash), "bound": ">="}
            else:
                row[p] = {"m": None, "bound": None}
        ratios[(method, objects)] = row
    return {"cells": cells, "ratios": ratios, "settings": settings}


def summary_json(summary: dict) -> dict:
    """A compact, JSON-ready copy (no per-step curves) for docs/results."""
    def num(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)
    return {"settings": vars(summary["settings"]),
            "cells": [c.as_dict() for c in summary["cells"].values()],
            "acceleration_ratios": [{"method": m, "objects": n, "baseline": summary["settings"].baseline,
                                     **{f"Cs({p})": {"m": num(v["m"]), "bound": v["bound"]} for p, v in row.items()}}
                                    for (m, n), row in summary["ratios"].items()]}
