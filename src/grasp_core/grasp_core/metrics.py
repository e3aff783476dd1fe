"""Learning-speed metrics of the seed paper (section IV-C): G, stable G-bar (Definition 1), Cs(p) (Definition 2),
the acceleration ratio m, and mean curves with 95 % confidence intervals over seeds.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def _as_sequence(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a 1-D sequence of finite numbers, got shape {array.shape}")
    return array


def _as_outcomes(successes) -> np.ndarray:
    outcomes = _as_sequence(successes, "successes")
    if not np.all((outcomes == 0) | (outcomes == 1)):
        raise ValueError("successes must be 0/1 (or False/True) per grasp attempt")
    return outcomes


def windowed_success(successes, window: int = 100, partial: str = "fixed") -> np.ndarray:
    """G = S / M after every attempt: S successes among the last M = `window` attempts (seed IV-C, M = 100).

    Before M attempts exist, `partial` says what G is: "fixed" divides the successes so far by M (missing
    attempts count as failures, so G ramps up from 0; what VPG's plot.py does), "so_far" divides by the
    number of attempts so far (noisy at the start: one lucky first grasp gives G = 1).
    Returns float64 (T,), entry t covering attempts max(0, t - M + 1) .. t.
    """
    outcomes = _as_outcomes(successes)
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer, got {window}")
    if partial not in ("fixed", "so_far"):
        raise ValueError(f"partial must be 'fixed' or 'so_far', got {partial!r}")
    cumulative = np.concatenate([[0.0], np.cumsum(outcomes)])
    t = np.arange(len(outcomes))
    start = np.maximum(t + 1 - window, 0)
    successes_in_window = cumulative[t + 1] - cumulative[start]
    denominator = window if partial == "fixed" else (t + 1 - start)
    return successes_in_window / denominator


def box_success(successes, box: int = 100) -> np.ndarray:
    """y(i) = H_i / L of Eq. 6: success rate over consecutive, non-overlapping boxes of L attempts (n = T / L).

    A last, incomplete box is left out.
    """
    outcomes = _as_outcomes(successes)
    if int(box) != box or box < 1:
        raise ValueError(f"box must be a positive integer, got {box}")
    n = len(outcomes) // box
    return outcomes[:n * box].reshape(n, box).mean(axis=1)


def stable_index(g_sequence, delta: float, k: int) -> int | None:
    """0-based index n at which |y(i) - y(i - 1)| < delta has held k times in a row (i = n - k + 1 .. n) for
    the first time; None if that never happens.

    A sliding G with a step of one attempt changes by at most 1 / M per step, so with delta > 1 / M it is
    "stable" at once: use box_success (the seed's y(i) = H_i / L) or choose delta < 1 / M.
    """
    y = _as_sequence(g_sequence, "g_sequence")
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    run = 0
    for i in range(1, len(y)):
        run = run + 1 if abs(y[i] - y[i - 1]) < delta else 0
        if run == k:
            return i
    return None


def stable_success(g_sequence, delta: float, k: int) -> float | None:
    """Stable grasp success rate G-bar (seed Definition 1): once |y(i) - y(i - 1)| < delta has held k times in
    a row, G-bar is the mean of the last k values y(n - k + 1) .. y(n). None if the sequence never settles.

    Eq. 6 writes (1/k) * sum_{i = n-k}^{n} y(i), whose index range holds k + 1 values; we read it as the mean
    of the k values that ended the stable run (the 1/k is taken as intended).
    """
    n = stable_index(g_sequence, delta, k)
    if n is None:
        return None
    y = np.asarray(g_sequence, dtype=np.float64)
    return float(y[n - k + 1:n + 1].mean())


def steps_to_reach(g_sequence, p: float, g_bar: float) -> int | None:
    """Cs(p) (seed Definition 2): the number of steps until G first reaches p % of G-bar (1-based: the
    position in g_sequence, i.e. the attempt count for windowed_success). None if it never does.
    """
    y = _as_sequence(g_sequence, "g_sequence")
    if not 0 < p <= 100:
        raise ValueError(f"p is a percentage in (0, 100], got {p}")
    if g_bar is None or not g_bar > 0:
        raise ValueError(f"G-bar must be > 0, got {g_bar} (did stable_success return None?)")
    reached = np.flatnonzero(y >= p / 100.0 * g_bar)
    return int(reached[0]) + 1 if len(reached) else None


def acceleration_ratio(r_baseline: float, r_ours: float) -> float:
    """m = (r - r') / r' (seed Table I), r = baseline Cs(p), r' = ours: 2.0 means three times fewer steps."""
    if r_baseline is None or r_ours is None:
        raise ValueError("both Cs(p) values are needed; a None means that run never reached p % of G-bar")
    if not (r_ours > 0 and r_baseline > 0):
        raise ValueError(f"Cs(p) values must be > 0 steps, got baseline {r_baseline}, ours {r_ours}")
    return (r_baseline - r_ours) / r_ours


def mean_ci95(curves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean curve and its 95 % confidence band over seeds: curves (S, T) -> (mean, lower, upper), each (T,).

    Student t with S - 1 degrees of freedom: mean +- t_0.975 * std(ddof=1) / sqrt(S) (seed Fig. 5: 8 seeds).
    """
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2 or curves.shape[0] < 2:
        raise ValueError(f"need curves of shape (seeds >= 2, steps), got {curves.shape}")
    seeds = curves.shape[0]
    mean = curves.mean(axis=0)
    half_width = stats.t.ppf(0.975, seeds - 1) * curves.std(axis=0, ddof=1) / np.sqrt(seeds)
    return mean, mean - half_width, mean + half_width
