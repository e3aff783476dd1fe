"""The ablation table: one row per experiment folder (a learning preset + overrides), mean G over its seeds.

G at t = successes / attempts over attempts t-99..t (the seed's window M = 100), so "G@100" is attempts 1-100
and "G@200" attempts 101-200. Each cell is mean ± std over the seeds of one method at one object count.

    python -m grasp_experiments.ablation --method ours --objects 10 --out docs/results/x/ablation.md \
        default=runs/exp/results seed=runs/exp/ablation/seed ...
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from grasp_core.attempts import read_attempts

from grasp_experiments.runner import DONE_FILE


def row_numbers(experiment: Path, method: str, objects: int, window: int = 100) -> dict:
    """G per window (mean, std over seeds), divergences, time per attempt, and the row's settings."""
    folder = Path(experiment) / "runs" / method / f"objects_{objects:02d}"
    runs = sorted(p for p in folder.glob("seed_*") if (p / DONE_FILE).is_file())
    if not runs:
        raise FileNotFoundError(f"no finished {method} runs at {objects} objects under {folder}")
    per_seed = []
    diverged, seconds = 0, []
    for run in runs:
        attempts = read_attempts(run)
        success = np.array([a["success"] for a in attempts], float)
        per_seed.append([success[i:i + window].mean() for i in range(0, len(success) - window + 1, window)])
        diverged += sum(bool(a.get("diverged")) for a in attempts)
        seconds.append(np.median([a["seconds"] for a in attempts]))
    windows = min(len(s) for s in per_seed)
    g = np.array([s[:windows] for s in per_seed])
    spec = json.loads((runs[0] / "spec.json").read_text())["spec"]
    return {"seeds": len(runs), "G": g.mean(0).tolist(), "G_std": g.std(0).tolist(), "per_seed": g.tolist(),
            "diverged": diverged, "seconds_per_attempt": float(np.median(seconds)),
            "learning": spec.get("learning", "default"), "overrides": spec.get("overrides", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grasp-ablation", description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("rows", nargs="+", metavar="NAME=FOLDER", help="row name and its experiment folder")
    parser.add_argument("--method", default="ours", help="method whose runs make the row")
    parser.add_argument("--objects", type=int, default=10, help="object count of the runs")
    parser.add_argument("--out", required=True, help="Markdown file to write (a .json with the numbers beside it)")
    args = parser.parse_args(argv)
    table, numbers = [], {}
    try:
        for item in args.rows:
            name, _, folder = item.partition("=")
            if not folder:
                raise ValueError(f"row {item!r} is not NAME=FOLDER")
            numbers[name] = r = row_numbers(Path(folder), args.method, args.objects)
            cells = [f"{m:.2f} ± {s:.2f}" for m, s in zip(r["G"], r["G_std"])]
            settings = " ".join(r["overrides"]) or "-"
            table.append(f"| {name} | `{r['learning']}` {settings} | {r['seeds']} | " + " | ".join(cells[:2]) +
                         f" | {r['diverged']} | {r['seconds_per_attempt']:.2f} |")
    except (ValueError, FileNotFoundError) as e:
        print(f"grasp-ablation: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ["| row | preset and overrides | seeds | G@100 | G@200 | diverged updates | s/attempt |",
              "|---|---|---|---|---|---|---|"]
    out.write_text("\n".join(header + table) + "\n")
    out.with_suffix(".json").write_text(json.dumps(numbers, indent=1) + "\n")
    print("\n".join(header + table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
