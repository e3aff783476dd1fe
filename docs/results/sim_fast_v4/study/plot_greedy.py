"""Ours and vanilla, greedy success over learning, in one figure (from run_curve.sh's greedy_*.json).

    scripts/in_env.sh python docs/results/sim_fast_v4/study/plot_greedy.py
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent.parent
fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
for method, color in (("ours", "tab:blue"), ("vanilla", "tab:red")):
    result = json.loads((HERE / f"greedy_{method}.json").read_text())
    x, mean, std = np.array(result["attempts"]), np.array(result["mean"]), np.array(result["std"])
    ax.plot(x, mean, "o-", color=color, lw=2, label=f"{method} (mean of {len(result['runs'])} runs)")
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15)
ax.set_xlabel("learning attempts before the checkpoint (0 = where learning starts)")
ax.set_ylabel(f"greedy success on {result['scenes']} fresh scenes")
ax.set_ylim(0.4, 1.0)
ax.grid(alpha=0.3)
ax.legend(loc="lower right")
ax.set_title("10 objects, default preset; band: +- 1 std over seeds")
fig.tight_layout()
fig.savefig(HERE / "greedy_over_learning.png")
print(HERE / "greedy_over_learning.png")
