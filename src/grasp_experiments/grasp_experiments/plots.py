"""The report's figures (PNG, small): seed Figs. 3, 5, 6, 7 and the novel-object test."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from grasp_experiments.analysis import PERCENTS  # noqa: E402
from grasp_experiments.methods import METHODS  # noqa: E402

DPI = 100


def _object_counts(cells) -> list[int]:
    return sorted({n for (_, n) in cells})


def _grid(count: int, width: float = 4.2, height: float = 3.2):
    cols = min(count, 2)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def learning_curves(summary: dict, methods: list[str], path: Path, title: str) -> Path:
    """G curves (seed mean, 95 % CI band over seeds), one panel per object count (Fig. 5 / Fig. 7)."""
    cells = summary["cells"]
    counts = _object_counts(cells)
    fig, axes = _grid(len(counts))
    for ax, n in zip(axes, counts):
        for method in methods:
            cell = cells.get((method, n))
            if cell is None:
                continue
            style = METHODS[method]
            t = np.arange(1, cell.steps + 1)
            ax.plot(t, cell.curve_mean, color=style.color, label=f"{style.label} ({len(cell.seeds)} seeds)", lw=1.5)
            if cell.curve_low is not None:
                ax.fill_between(t, cell.curve_low, cell.curve_high, color=style.color, alpha=0.2, lw=0)
        ax.set_title(f"{n} objects")
        ax.set_xlabel("grasp attempts (training steps)")
        ax.set_ylabel(f"G (window M = {summary['settings'].window})")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    entries = {}  # every method once, also those with results for some object counts only
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label.split(" (")[0], (handle, label))
    axes[0].legend([h for h, _ in entries.values()], [lab for _, lab in entries.values()], fontsize=7,
                   loc="upper left")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def cs_histograms(summary: dict, methods: list[str], path: Path) -> Path:
    """Cs(50..90) bars per method, one panel per object count (Fig. 6); a missing bar never reached p % of G-bar."""
    cells = summary["cells"]
    counts = _object_counts(cells)
    fig, axes = _grid(len(counts))
    present = [m for m in methods if any((m, n) in cells for n in counts)]
    width = 0.8 / max(1, len(present))
    for ax, n in zip(axes, counts):
        x = np.arange(len(PERCENTS))
        for i, method in enumerate(present):
            cell = cells.get((method, n))
            if cell is None:
                continue
            values = [cell.cs[p] if cell.cs[p] is not None else 0 for p in PERCENTS]
            ax.bar(x + (i - (len(present) - 1) / 2) * width, values, width, color=METHODS[method].color,
                   label=METHODS[method].label)
            for xi, p in zip(x, PERCENTS):
                if cell.cs[p] is None:
                    ax.text(xi + (i - (len(present) - 1) / 2) * width, 1, "n/r", ha="center", va="bottom",
                            fontsize=6, rotation=90)
        ax.set_xticks(x, [f"Cs({p})" for p in PERCENTS], fontsize=8)
        ax.set_ylabel("attempts")
        ax.set_title(f"{n} objects (G-bar: {summary['settings'].gbar})")
        ax.grid(alpha=0.3, axis="y")
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    axes[0].legend(list(entries.values()), list(entries), fontsize=7)
    return _save(fig, path)


def loss_comparison(maps: dict, path: Path) -> Path:
    """Fig. 3: the held-out heightmap, its label and Q_s's maps after MSE, smooth L1 and KL pretraining."""
    panels = [("colour heightmap", maps["color"], None), ("(a) label", maps["label"], "viridis")]
    for key, name in (("pred_mse", "(b) MSE"), ("pred_smooth_l1", "(c) smooth L1"), ("pred_kl", "(d) KL-div")):
        if key in maps:
            panels.append((name, maps[key], "viridis"))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.3 * len(panels), 2.6))
    for ax, (name, image, cmap) in zip(axes, panels):
        ax.imshow(image, cmap=cmap, vmin=None if cmap is None else 0, vmax=None if cmap is None else 1)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    return _save(fig, path)


def novel_bars(novel: dict, path: Path) -> Path:
    """Table II as bars: mean G over rounds +- std, per method."""
    methods = [m for m in METHODS if m in novel["methods"]] + [m for m in novel["methods"] if m not in METHODS]
    fig, ax = plt.subplots(figsize=(4.5, 3))
    means = [novel["methods"][m]["mean"] for m in methods]
    stds = [novel["methods"][m]["std"] for m in methods]
    colors = [METHODS[m].color if m in METHODS else "tab:gray" for m in methods]
    ax.bar(range(len(methods)), means, yerr=stds, color=colors, capsize=4)
    ax.set_xticks(range(len(methods)), [m.replace("_", "\n") for m in methods], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"G on novel objects ({novel['rounds']} x {novel['attempts']})")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)
